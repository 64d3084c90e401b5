import { lstat } from 'node:fs/promises';
import path from 'node:path';
import type { LayeredRoot } from '../snapshot/layered-root.js';
import type { ContextSource } from './build-context.js';

/** What makes a COPY source a pattern (filepath.Match's special characters). */
const PATTERN_CHARACTERS = /[*?[\\]/;

/**
 * COPY --from's sources read straight from the snapshots, without mounting their overlay, when that shows the
 * same: each source a plain path (no wildcard) found through the layers, a file (what the topmost layer that
 * has it holds), or a directory that no other layer has at all (so its tree is that one layer's). Undefined
 * when any source needs the overlay (a wildcard, a directory merged from several layers) or is missing: the
 * mounted root then gives the answer, and the error message.
 */
export async function sourcesInLayers(root: LayeredRoot, patterns: readonly string[]): Promise<ContextSource[] | undefined> {
  const sources: ContextSource[] = [];
  for (const pattern of patterns) {
    const relative = path.posix.normalize(`./${pattern}`).replace(/\/$/, '');
    if (PATTERN_CHARACTERS.test(relative) || relative === '..' || relative.startsWith('../')) return undefined;
    const hostPath = await root.hostPath(relative).catch(() => undefined);
    const stats = hostPath === undefined ? undefined : await lstat(hostPath);
    if (hostPath === undefined || stats === undefined || stats.isSymbolicLink()) return undefined;
    if (stats.isDirectory() && !(await root.aloneInItsLayer(hostPath))) return undefined;
    sources.push({ hostPath, relative: relative === '.' ? '' : relative, stats });
  }
  return sources;
}
