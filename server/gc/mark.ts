import type { ScratchSet } from './gc-store.js';
import type { GcRun } from './gc-run.js';

/**
 * Marks (in gc:mark) every blob a manifest of any repository names: configs, layers, artifact blobs; and
 * (in gc:manifest-mark) every manifest some repository links, whose record must stay.
 */
export async function markReferencedBlobs(run: GcRun): Promise<void> {
  for await (const repositories of run.gc.repositories()) {
    for (const repository of repositories) {
      for await (const page of run.paced(run.gc.manifestsOf(repository))) {
        // A dry run keeps the records of the untagged manifests it would delete: the real run's deletion
        // takes those records with the links, so its record sweep does not count them either.
        await run.gc.add('manifest-mark', page);
        await markBlobsOf(run, repository, page, 'mark');
      }
    }
  }
}

/**
 * Adds to `set` the blobs named by the repository's manifests, page by page. Index children and referrers
 * are manifests of the repository themselves, so their blobs are reached by the same walk.
 */
export async function markRepositoryBlobs(run: GcRun, repository: string, set: ScratchSet): Promise<void> {
  for await (const page of run.paced(run.gc.manifestsOf(repository))) await markBlobsOf(run, repository, page, set);
}

/** A dry run that would delete untagged manifests leaves theirs out, as the real run will have deleted them. */
async function markBlobsOf(run: GcRun, repository: string, digests: string[], set: ScratchSet): Promise<void> {
  const kept = await keptManifests(run, repository, digests);
  const references = await run.gc.references(kept);
  await run.gc.add(
    set,
    references.flatMap((reference) => reference.blobs),
  );
}

async function keptManifests(run: GcRun, repository: string, digests: string[]): Promise<string[]> {
  if (!(run.dryRun && run.options.deleteUntagged)) return digests;
  const doomed = await run.gc.whichAreMembers(
    'doomed',
    digests.map((digest) => manifestId(repository, digest)),
  );
  return digests.filter((_digest, index) => !doomed[index]);
}

/** How the collector's sets name a manifest of a repository (names cannot contain '@'). */
export function manifestId(repository: string, digest: string): string {
  return `${repository}@${digest}`;
}

export function parseManifestId(id: string): { repository: string; digest: string } {
  const at = id.lastIndexOf('@');
  return { repository: id.slice(0, at), digest: id.slice(at + 1) };
}
