import type { Redis } from 'ioredis';

// Replicas see a switch made through the admin API within this long; a write costs no Redis read meanwhile.
const CACHE_MS = 1_000;

/**
 * Read-only maintenance mode: on when the config says so (`maintenance.readOnly`) or when switched on through
 * the admin API, which stores the switch in Redis so every replica follows it.
 */
export class MaintenanceMode {
  private cached: { readOnly: boolean; until: number } | undefined;

  constructor(
    private readonly redis: Redis,
    private readonly key: string,
    private readonly forcedByConfig: boolean,
  ) {}

  async readOnly(): Promise<boolean> {
    if (this.forcedByConfig) return true;
    if (this.cached && this.cached.until > Date.now()) return this.cached.readOnly;
    const readOnly = (await this.redis.get(this.key)) === '1';
    this.cached = { readOnly, until: Date.now() + CACHE_MS };
    return readOnly;
  }

  async switchTo(readOnly: boolean): Promise<void> {
    await (readOnly ? this.redis.set(this.key, '1') : this.redis.del(this.key));
    this.cached = undefined;
  }

  async status(): Promise<{ readOnly: boolean; forcedByConfig: boolean }> {
    return { readOnly: await this.readOnly(), forcedByConfig: this.forcedByConfig };
  }
}
