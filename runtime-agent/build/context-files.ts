import { readFile, readlink } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import dockerignore from '@balena/dockerignore';
import { packTar, walkTree, type TarItem, type WalkRules } from '../archive/directory-tar.js';

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

/** Walks what is not ignored; an ignored directory is still walked when an exception may bring back something in it. */
export function contextRules(filter: ContextFilter): WalkRules {
  return {
    include: (relative) => !filter.ignores(relative),
    descend: (_relative, _stats, included) => included || filter.hasExceptions,
  };
}

/** The context as a tar stream (owner 0:0, as docker sends it): directories, symlinks and regular files. */
export function packContext(root: string, filter: ContextFilter): Readable {
  return packTar(contextItems(root, filter));
}

async function* contextItems(root: string, filter: ContextFilter): AsyncGenerator<TarItem> {
  for await (const { relative, hostPath, stats } of walkTree(root, contextRules(filter))) {
    const header = { name: relative, mode: stats.mode & 0o7777, mtime: stats.mtime, uid: 0, gid: 0 };
    if (stats.isDirectory()) yield { header: { ...header, type: 'directory' }, contentPath: undefined };
    else if (stats.isSymbolicLink())
      yield { header: { ...header, type: 'symlink', linkname: await readlink(hostPath) }, contentPath: undefined };
    else if (stats.isFile()) yield { header: { ...header, type: 'file', size: stats.size }, contentPath: hostPath };
  }
}
