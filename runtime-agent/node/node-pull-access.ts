import type { RegistryAccess } from '../registry/registry-access.js';

/** What the registry answers when asked for the node's pull token: null when it has no auth. */
export interface MintedPullToken {
  token: string | null;
  expiresIn: number | null;
}

/**
 * The node's access to its registry's images: a pull token the registry mints for the repositories of the
 * replicas assigned to the node (never a login saved on the host). Asked for when a pull first needs it, and
 * again once half its lifetime has passed (a pull started with it must not see it expire at once) or the
 * assignments changed (a repository new to the node is not covered by the last one). Pulls that need it
 * at the same time share one request.
 */
export class NodePullAccess {
  readonly access: RegistryAccess = { type: 'scoped-token', token: () => this.token() };
  private version = 0;
  private current: { token: string | null; version: number; renewAt: number } | undefined;
  private minting: { version: number; token: Promise<string | null> } | undefined;

  constructor(
    private readonly mint: () => Promise<MintedPullToken>,
    private readonly now: () => number = Date.now,
  ) {}

  /** The node's assignments are now at this version: the next pull asks for a token that covers them. */
  assignmentsChanged(version: number): void {
    this.version = version;
  }

  private token(): Promise<string | null> {
    const { current, version } = this;
    if (current && current.version === version && this.now() < current.renewAt) return Promise.resolve(current.token);
    if (this.minting?.version === version) return this.minting.token;
    const token = this.renew(version);
    this.minting = { version, token };
    return token;
  }

  private async renew(version: number): Promise<string | null> {
    try {
      const minted = await this.mint();
      // No auth: the answer holds until the assignments change.
      const renewAt = minted.expiresIn === null ? Infinity : this.now() + (minted.expiresIn * 1000) / 2;
      this.current = { token: minted.token, version, renewAt };
      return minted.token;
    } finally {
      if (this.minting?.version === version) this.minting = undefined;
    }
  }
}
