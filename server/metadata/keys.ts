import type { ScratchSet } from '../gc/gc-store.js';

/**
 * Key names under the configured prefix (`redis.keyPrefix`), a family of keys in a namespace of its own
 * (the registry's at the root, `deploy:` for the control plane): each family's class names its keys
 * through `key` and builds no prefix itself.
 */
export abstract class KeySpace {
  constructor(
    readonly prefix: string,
    private readonly namespace: string,
  ) {}

  protected key(suffix: string): string {
    return `${this.prefix}${this.namespace}${suffix}`;
  }
}

/**
 * Every Redis key of the registry, as the TypeScript side spells it: nothing else in server/ builds a key
 * name. The layout (what each key holds) is documented once, at the top of redis-scripts.ts; the Lua scripts
 * there and in gc-scripts.ts build the same names from the prefix they receive as ARGV[1].
 */
export class RegistryKeys extends KeySpace {
  constructor(prefix: string) {
    super(prefix, '');
  }

  /** Repositories with at least one manifest, for _catalog. */
  repositories(): string {
    return this.key('repos');
  }

  repoTags(repository: string): string {
    return this.repoKey(repository, 'tags');
  }

  repoTagMap(repository: string): string {
    return this.repoKey(repository, 'tagmap');
  }

  repoManifests(repository: string): string {
    return this.repoKey(repository, 'm');
  }

  repoBlobs(repository: string): string {
    return this.repoKey(repository, 'b');
  }

  repoReferrers(repository: string, subject: string): string {
    return this.repoKey(repository, `ref:${subject}`);
  }

  manifest(digest: string): string {
    return this.key(`m:${digest}`);
  }

  blob(digest: string): string {
    return this.key(`b:${digest}`);
  }

  upload(id: string): string {
    return this.key(`u:${id}`);
  }

  lease(name: string): string {
    return this.key(`lease:${name}`);
  }

  gcScratch(set: ScratchSet): string {
    return this.key(`gc:${set}`);
  }

  gcQueue(): string {
    return this.key('gc:queue');
  }

  gcTombstones(): string {
    return this.key('gc:tombstones');
  }

  authUsers(): string {
    return this.key('auth:users');
  }

  authRobots(): string {
    return this.key('auth:robots');
  }

  authRobotsLastUsed(): string {
    return this.key('auth:robots:last-used');
  }

  authRules(): string {
    return this.key('auth:rules');
  }

  authGenerations(): string {
    return this.key('auth:generations');
  }

  loginFailuresOfAccount(account: string): string {
    return this.key(`auth:failures:account:${account}`);
  }

  loginFailuresOfAddress(address: string): string {
    return this.key(`auth:failures:address:${address}`);
  }

  webhookQueue(endpoint: string): string {
    return this.key(`webhooks:queue:${endpoint}`);
  }

  webhookAttempts(endpoint: string): string {
    return this.key(`webhooks:attempts:${endpoint}`);
  }

  webhookDeadLetters(endpoint: string): string {
    return this.key(`webhooks:dead:${endpoint}`);
  }

  webhookLog(): string {
    return this.key('webhooks:log');
  }

  maintenanceReadOnly(): string {
    return this.key('maintenance:read-only');
  }

  /** A counter written before each WAIT of durable acknowledgement (metadata/replica-ack.ts). */
  durableAckMarker(): string {
    return this.key('durable-ack');
  }

  private repoKey(repository: string, suffix: string): string {
    return this.key(`r:${repository}:${suffix}`);
  }
}

/**
 * Every key one family builds (e.g. `keys.blob`), as a SCAN MATCH pattern, and the family's argument read
 * back from each key found. Glob characters in the fixed parts (a prefix such as `a*`) match only themselves.
 */
export class KeyFamily {
  readonly match: string;
  private readonly head: string;
  private readonly tail: string;

  constructor(build: (id: string) => string) {
    const [head = '', tail = ''] = build(MARKER).split(MARKER);
    this.head = head;
    this.tail = tail;
    this.match = `${escapeGlob(head)}*${escapeGlob(tail)}`;
  }

  idOf(key: string): string {
    return key.slice(this.head.length, key.length - this.tail.length);
  }
}

// Cannot occur in a prefix read from YAML or the environment, nor in any name the registry keys on.
const MARKER = '\u0000';

function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}
