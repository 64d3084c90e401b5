/** Who is asking: a user, a robot account, or nobody in particular. */
export interface Identity {
  kind: 'user' | 'robot' | 'anonymous';
  /** The account name as it logs in: `alice`, `robot$ci`; empty for anonymous. */
  name: string;
  groups: string[];
  admin: boolean;
}

export const ANONYMOUS: Identity = { kind: 'anonymous', name: '', groups: [], admin: false };

/** Robot accounts log in as `robot$<name>`, so they can never be mistaken for (or collide with) a user. */
export const ROBOT_PREFIX = 'robot$';

/** Where accounts live. Several stores can be chained: the first that knows a name answers for it. */
export interface IdentityStore {
  /** The identity these credentials prove, or undefined for a wrong secret or unknown account. */
  verify(username: string, secret: string): Promise<Identity | undefined>;
  /** The identity a token's subject names, if it still exists and may still log in. */
  lookup(username: string): Promise<Identity | undefined>;
  /** Whether this store owns the name (so later stores are not asked). */
  knows(username: string): Promise<boolean>;
}

export class ChainedIdentityStore implements IdentityStore {
  constructor(private readonly stores: readonly IdentityStore[]) {}

  async verify(username: string, secret: string): Promise<Identity | undefined> {
    const owner = await this.owner(username);
    // An unknown name still pays for a check, so timing does not tell which names exist.
    return (owner ?? this.stores[0])?.verify(username, secret);
  }

  async lookup(username: string): Promise<Identity | undefined> {
    return (await this.owner(username))?.lookup(username);
  }

  async knows(username: string): Promise<boolean> {
    return (await this.owner(username)) !== undefined;
  }

  private async owner(username: string): Promise<IdentityStore | undefined> {
    for (const store of this.stores) if (await store.knows(username)) return store;
    return undefined;
  }
}
