import { createHash } from 'node:crypto';
import { createReadStream, type Stats } from 'node:fs';
import { lstat, readdir, readlink, stat } from 'node:fs/promises';
import path from 'node:path';
import type { ContextFilter } from './context-files.js';
import { DockerfileError } from './dockerfile.js';
import { escapeRegExp } from './shell-words.js';

/** What COPY and ADD read from the build context, found as docker finds it and never outside it. */

export interface ContextSource {
  /** The host path after symlinks on the way (and the source itself) were followed inside the context. */
  hostPath: string;
  /** Relative to the context root, for messages and the cache key. */
  relative: string;
  stats: Stats;
}

const MAX_SYMLINKS = 40;
const GLOB_CHARACTERS = /[*?[]/;

export class BuildContext {
  /**
   * `links`: 'refuse' for the build context (a symlink pointing out of it fails the build), 'confine' for an
   * image's or stage's root, where absolute links are normal and resolve inside it.
   */
  constructor(
    readonly root: string,
    readonly filter: ContextFilter,
    readonly links: 'refuse' | 'confine' = 'refuse',
  ) {}

  /** The sources a COPY names, wildcards expanded; a missing, ignored or escaping source fails with the line. */
  async resolve(patterns: readonly string[], line: number): Promise<ContextSource[]> {
    const sources: ContextSource[] = [];
    for (const pattern of patterns) {
      const relative = this.confine(pattern, line);
      const matches = GLOB_CHARACTERS.test(relative) ? await this.glob(relative) : [relative];
      if (matches.length === 0)
        throw new DockerfileError(line, `no source files were specified: ${pattern} matches nothing in the build context`);
      for (const match of matches) sources.push(await this.source(match, pattern, line));
    }
    return sources;
  }

  /**
   * The content digest of everything these sources hold (names, types, modes, bytes, link targets; not
   * times or owners, which COPY does not take from the context): the cache key's part for a COPY.
   */
  async digest(sources: readonly ContextSource[]): Promise<string> {
    const hash = createHash('sha256');
    for (const source of sources) {
      hash.update(`source ${source.relative}\n`);
      await this.hashEntry(hash, source.hostPath, source.stats, source.relative, '.');
    }
    return `sha256:${hash.digest('hex')}`;
  }

  /** The pattern as a path inside the context; `..` that climbs out is refused. */
  private confine(pattern: string, line: number): string {
    const normalized = path.posix.normalize(`./${pattern}`);
    if (normalized === '..' || normalized.startsWith('../'))
      throw new DockerfileError(line, `COPY source ${pattern} is outside the build context`);
    return normalized.replace(/^\.\/?/, '').replace(/\/$/, '');
  }

  private async source(relative: string, pattern: string, line: number): Promise<ContextSource> {
    const hostPath = await this.follow(relative, pattern, line);
    const stats = await stat(hostPath).catch(() => undefined);
    if (!stats || (relative !== '' && this.filter.ignores(relative)))
      throw new DockerfileError(line, `"/${relative}": not found in the build context (source ${pattern})`);
    return { hostPath, relative, stats };
  }

  /** Follows every symlink on the way as inside the context; one that points out of it is the Dockerfile's error. */
  private async follow(relative: string, pattern: string, line: number): Promise<string> {
    const resolved: string[] = [];
    const pending = relative.split('/').filter((part) => part !== '' && part !== '.');
    let links = 0;
    while (pending.length > 0) {
      const part = pending.shift() as string;
      if (part === '..') {
        if (resolved.length === 0 && this.links === 'refuse') throw outside(pattern, line);
        resolved.pop();
        continue;
      }
      const candidate = path.join(this.root, ...resolved, part);
      const stats = await lstat(candidate).catch(() => undefined);
      if (!stats?.isSymbolicLink()) {
        resolved.push(part);
        continue;
      }
      if (++links > MAX_SYMLINKS) throw new DockerfileError(line, `too many symbolic links resolving ${pattern}`);
      const target = await readlink(candidate);
      if (target.startsWith('/')) {
        if (this.links === 'refuse') throw outside(pattern, line);
        resolved.length = 0;
      }
      pending.unshift(...target.split('/').filter((item) => item !== '' && item !== '.'));
    }
    return path.join(this.root, ...resolved);
  }

  /** Path segments matched one by one with filepath.Match's rules (`*` and `?` stop at `/`). */
  private async glob(pattern: string): Promise<string[]> {
    let matches = [''];
    for (const segment of pattern.split('/')) {
      const next: string[] = [];
      for (const base of matches) {
        if (!GLOB_CHARACTERS.test(segment)) {
          const candidate = base === '' ? segment : `${base}/${segment}`;
          if (await lstat(path.join(this.root, candidate)).catch(() => undefined)) next.push(candidate);
          continue;
        }
        const matcher = segmentMatcher(segment);
        const names = await readdir(path.join(this.root, base)).catch(() => [] as string[]);
        for (const name of names.sort()) {
          const candidate = base === '' ? name : `${base}/${name}`;
          if (matcher.test(name) && !this.filter.ignores(candidate)) next.push(candidate);
        }
      }
      matches = next;
    }
    return matches;
  }

  private async hashEntry(
    hash: ReturnType<typeof createHash>,
    hostPath: string,
    stats: Stats,
    relative: string,
    name: string,
  ): Promise<void> {
    if (stats.isDirectory()) {
      hash.update(`dir ${name} ${(stats.mode & 0o7777).toString(8)}\n`);
      for (const child of (await readdir(hostPath)).sort()) {
        const childRelative = relative === '' ? child : `${relative}/${child}`;
        if (this.filter.ignores(childRelative)) continue;
        const childPath = path.join(hostPath, child);
        await this.hashEntry(hash, childPath, await lstat(childPath), childRelative, `${name}/${child}`);
      }
    } else if (stats.isSymbolicLink()) {
      hash.update(`link ${name} ${await readlink(hostPath)}\n`);
    } else if (stats.isFile()) {
      hash.update(`file ${name} ${(stats.mode & 0o7777).toString(8)} ${stats.size} ${await fileDigests.digest(hostPath, stats)}\n`);
    }
  }
}

/**
 * File content digests kept between builds while a file's identity and times stay the same (the daemon reads a
 * local context in place, at the same paths each build): a rebuild with nothing changed reads no file
 * again. Any write changes the ctime, so a changed file is always hashed anew. Bounded: the oldest go first.
 */
class FileDigestCache {
  private readonly entries = new Map<string, { stamp: string; digest: string }>();

  constructor(private readonly capacity: number) {}

  async digest(hostPath: string, stats: Stats): Promise<string> {
    const stamp = `${stats.dev} ${stats.ino} ${stats.size} ${stats.mtimeMs} ${stats.ctimeMs}`;
    const known = this.entries.get(hostPath);
    if (known?.stamp === stamp) return known.digest;
    const hash = createHash('sha256');
    for await (const chunk of createReadStream(hostPath)) hash.update(chunk as Buffer);
    const digest = hash.digest('hex');
    this.entries.delete(hostPath);
    this.entries.set(hostPath, { stamp, digest });
    if (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value as string);
    return digest;
  }
}

/** About 200 bytes an entry: some 20 MB for the largest contexts' files. */
const fileDigests = new FileDigestCache(100_000);

function outside(pattern: string, line: number): DockerfileError {
  return new DockerfileError(line, `COPY source ${pattern} goes through a symbolic link that points outside the build context`);
}

/** A glob segment (`*`, `?`, `[a-z]`, `[!x]`, `\` escapes) as a whole-name regular expression. */
export function segmentMatcher(segment: string): RegExp {
  let source = '';
  for (let index = 0; index < segment.length; index++) {
    const character = segment[index] as string;
    if (character === '*') source += '[^/]*';
    else if (character === '?') source += '[^/]';
    else if (character === '\\' && index + 1 < segment.length) source += escapeRegExp(segment[++index] as string);
    else if (character === '[') {
      const close = segment.indexOf(']', index + 2);
      if (close === -1) source += '\\[';
      else {
        const body = segment
          .slice(index + 1, close)
          .replace(/^[!^]/, '^')
          .replace(/\\/g, '\\\\');
        source += `[${body}]`;
        index = close;
      }
    } else source += escapeRegExp(character);
  }
  return new RegExp(`^${source}$`, 's');
}
