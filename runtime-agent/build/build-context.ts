import { createHash } from 'node:crypto';
import { createReadStream, type Stats } from 'node:fs';
import { lstat, readdir, readlink, stat } from 'node:fs/promises';
import path from 'node:path';
import { mapAhead, READ_AHEAD, READ_AHEAD_MAX_FILE, readWholeFile, walkTree, type TreeEntry } from '../archive/directory-tar.js';
import { PathEscapeError, resolveInRoot, UnsafePathError, type RootEscape } from '../unpack/rooted-path.js';
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

const GLOB_CHARACTERS = /[*?[]/;

export class BuildContext {
  /**
   * `links`: 'refuse' for the build context (a symlink pointing out of it fails the build), 'confine' for an
   * image's or stage's root, where absolute links are normal and resolve inside it.
   */
  constructor(
    readonly root: string,
    readonly filter: ContextFilter,
    readonly links: RootEscape = 'refuse',
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
      // Files are hashed (or found in the digest cache) ahead of their turn; the lines go in in walk order.
      for await (const line of mapAhead(this.sourceEntries(source), READ_AHEAD, entryLine)) if (line !== undefined) hash.update(line);
    }
    return `sha256:${hash.digest('hex')}`;
  }

  /** A source and, for a directory, everything under it that the filter keeps; names relative to the source (`.`). */
  private async *sourceEntries(source: ContextSource): AsyncGenerator<TreeEntry> {
    yield { relative: '.', hostPath: source.hostPath, stats: source.stats };
    if (!source.stats.isDirectory()) return;
    const within = (relative: string) => (source.relative === '' ? relative : `${source.relative}/${relative}`);
    const rules = {
      include: (relative: string) => !this.filter.ignores(within(relative)),
      descend: (_: string, __: Stats, included: boolean) => included,
    };
    for await (const entry of walkTree(source.hostPath, rules)) yield { ...entry, relative: `./${entry.relative}` };
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
    try {
      return await resolveInRoot(this.root, relative, this.links);
    } catch (error) {
      if (error instanceof PathEscapeError)
        throw new DockerfileError(line, `COPY source ${pattern} goes through a symbolic link that points outside the build context`);
      if (error instanceof UnsafePathError) throw new DockerfileError(line, `too many symbolic links resolving ${pattern}`);
      throw error;
    }
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
}

/** An entry's line in a COPY's content digest. */
async function entryLine({ relative, hostPath, stats }: TreeEntry): Promise<string | undefined> {
  if (stats.isDirectory()) return `dir ${relative} ${(stats.mode & 0o7777).toString(8)}\n`;
  if (stats.isSymbolicLink()) return `link ${relative} ${await readlink(hostPath)}\n`;
  if (stats.isFile())
    return `file ${relative} ${(stats.mode & 0o7777).toString(8)} ${stats.size} ${await fileDigests.digest(hostPath, stats)}\n`;
  return undefined;
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
    if (stats.size <= READ_AHEAD_MAX_FILE) hash.update(await readWholeFile(hostPath, stats.size));
    else for await (const chunk of createReadStream(hostPath)) hash.update(chunk as Buffer);
    const digest = hash.digest('hex');
    this.entries.delete(hostPath);
    this.entries.set(hostPath, { stamp, digest });
    if (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value as string);
    return digest;
  }
}

/** About 200 bytes an entry: some 20 MB for the largest contexts' files. */
const fileDigests = new FileDigestCache(100_000);

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
