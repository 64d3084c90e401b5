import { createHash } from 'node:crypto';
import { lstat, mkdir, readdir, rm, utimes } from 'node:fs/promises';
import path from 'node:path';

/** How much of the projects' git mirrors a build worker keeps between jobs. */
export interface GitMirrorLimits {
  /** A mirror no job used for this long is removed. */
  maxAgeMs: number;
  /** Beyond this many bytes on disk, the least recently used mirrors are removed until the rest fit. */
  maxBytes: number;
}

export interface PrunedMirrors {
  /** Names of the removed mirrors (their directories under the root). */
  removed: string[];
  freedBytes: number;
  keptBytes: number;
}

interface MirrorUsage {
  name: string;
  lastUsedMs: number;
  bytes: number;
}

/**
 * The bare git repositories a build worker fetches into, one per project and URL, kept between jobs so a commit
 * is fetched once. A mirror's directory time is its last use (set when a job takes it); mirrors are pruned by
 * age, then least recently used first down to a total size, as BuildKit's cache GC keeps its git sources by
 * keep-duration and keep-bytes. Only the worker's job loop uses them, one job at a time, so a pruned mirror is
 * never one a job is reading.
 */
export class GitMirrors {
  constructor(
    private readonly root: string,
    private readonly limits: GitMirrorLimits,
  ) {}

  /** The mirror of a project's repository (created empty if new), marked as used now. */
  async use(project: string, url: string): Promise<string> {
    const dir = path.join(this.root, createHash('sha256').update(`${project}\n${url}`).digest('hex').slice(0, 32));
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const now = new Date();
    await utimes(dir, now, now);
    return dir;
  }

  /** Removes the mirrors unused for longer than the age limit, then the least recently used while the rest exceed the size limit. */
  async prune(now = Date.now()): Promise<PrunedMirrors> {
    const oldestFirst = (await this.usage()).sort((a, b) => a.lastUsedMs - b.lastUsedMs);
    let keptBytes = sum(oldestFirst.map((mirror) => mirror.bytes));
    const removed: MirrorUsage[] = [];
    for (const mirror of oldestFirst) {
      if (now - mirror.lastUsedMs <= this.limits.maxAgeMs && keptBytes <= this.limits.maxBytes) break;
      await rm(path.join(this.root, mirror.name), { recursive: true, force: true });
      removed.push(mirror);
      keptBytes -= mirror.bytes;
    }
    return { removed: removed.map((mirror) => mirror.name), freedBytes: sum(removed.map((mirror) => mirror.bytes)), keptBytes };
  }

  private async usage(): Promise<MirrorUsage[]> {
    const entries = await readdir(this.root, { withFileTypes: true }).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return [];
      throw error;
    });
    return Promise.all(
      entries
        .filter((entry) => entry.isDirectory())
        .map(async ({ name }) => {
          const dir = path.join(this.root, name);
          return { name, lastUsedMs: (await lstat(dir)).mtimeMs, bytes: await diskUsage(dir) };
        }),
    );
  }
}

/** Bytes a directory tree takes on disk (allocated blocks, as `du`). */
async function diskUsage(dir: string): Promise<number> {
  const names = await readdir(dir, { recursive: true });
  const sizes = await Promise.all(names.map(async (name) => (await lstat(path.join(dir, name)).catch(() => undefined))?.blocks ?? 0));
  return (sum(sizes) + (await lstat(dir)).blocks) * 512;
}

function sum(values: number[]): number {
  return values.reduce((total, value) => total + value, 0);
}
