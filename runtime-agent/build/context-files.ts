import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import { createReadStream, type Stats } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import dockerignore from '@balena/dockerignore';
import tar, { type Header, type Pack } from 'tar-stream';

/**
 * The files of a build context as docker sees them: `.dockerignore` (or `<Dockerfile>.dockerignore` next to
 * the Dockerfile, which wins) with Docker's matching rules, exceptions included. The CLI uses it to send
 * only what is not ignored; the daemon uses it again for contexts sent as a tar.
 */

export interface ContextFilter {
  ignores(relativePath: string): boolean;
  /** Whether any `!` exception exists: an ignored directory must then still be walked. */
  hasExceptions: boolean;
}

export async function loadContextFilter(root: string, dockerfilePath: string | undefined): Promise<ContextFilter> {
  const candidates = [...(dockerfilePath ? [`${dockerfilePath}.dockerignore`] : []), path.join(root, '.dockerignore')];
  for (const candidate of candidates) {
    const text = await readFile(candidate, 'utf8').catch(() => undefined);
    if (text !== undefined) return contextFilter(text);
  }
  return contextFilter('');
}

export function contextFilter(text: string): ContextFilter {
  const patterns = text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
  const matcher = dockerignore.default().add(patterns);
  return {
    ignores: (relativePath) => relativePath !== '' && matcher.ignores(relativePath),
    hasExceptions: patterns.some((pattern) => pattern.startsWith('!')),
  };
}

export interface ContextEntry {
  /** Relative to the context root, `/`-separated. */
  relative: string;
  stats: Stats;
}

/** Every entry not ignored, depth first in name order (parents before children). */
export async function* contextEntries(root: string, filter: ContextFilter, relative = ''): AsyncGenerator<ContextEntry> {
  const names = (await readdir(path.join(root, relative))).sort();
  for (const name of names) {
    const child = relative === '' ? name : `${relative}/${name}`;
    const stats = await lstat(path.join(root, child));
    const ignored = filter.ignores(child);
    if (!ignored) yield { relative: child, stats };
    if (stats.isDirectory() && (!ignored || filter.hasExceptions)) yield* contextEntries(root, filter, child);
  }
}

/** The context as a tar stream (owner 0:0, as docker sends it), file contents streamed one after the other. */
export function packContext(root: string, filter: ContextFilter): Readable {
  const pack = tar.pack();
  void (async () => {
    for await (const { relative, stats } of contextEntries(root, filter)) {
      const header = { name: relative, mode: stats.mode & 0o7777, mtime: stats.mtime, uid: 0, gid: 0 };
      if (stats.isDirectory()) pack.entry({ ...header, type: 'directory' });
      else if (stats.isSymbolicLink()) pack.entry({ ...header, type: 'symlink', linkname: await readlink(path.join(root, relative)) });
      else if (stats.isFile()) await writeFileEntry(pack, { ...header, size: stats.size }, path.join(root, relative));
    }
    pack.finalize();
  })().catch((error: Error) => pack.destroy(error));
  return Readable.from(pack);
}

function writeFileEntry(pack: Pack, header: Partial<Header> & { name: string }, file: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const entry = pack.entry(header, (error) => (error ? reject(error) : resolve()));
    createReadStream(file).once('error', reject).pipe(entry);
  });
}
