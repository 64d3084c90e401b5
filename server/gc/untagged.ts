import type { GcRun } from './gc-run.js';
import { manifestId, parseManifestId } from './mark.js';

// Manifests whose references are followed per round trip while computing what tags reach.
const QUEUE_BATCH = 500;

/**
 * Deletes manifests no tag reaches. Reachable (gc:live) are: tagged manifests, the children of a reachable
 * index, the referrers of a reachable manifest (signatures and SBOMs live as long as their subject), and the
 * subject of a reachable referrer. So the referrers of a deleted manifest are deleted with it unless a tag
 * keeps them (and, through them, their subject). Each deletion re-checks in Lua that the manifest is still
 * untagged and was not pushed or named by an index PUT since the cutoff.
 */
export async function deleteUntaggedManifests(run: GcRun): Promise<void> {
  await markLiveManifests(run);
  for await (const repositories of run.gc.repositories()) {
    for (const repository of repositories) {
      for await (const page of run.paced(run.gc.manifestsOf(repository))) {
        const live = await run.gc.whichAreMembers(
          'live',
          page.map((digest) => manifestId(repository, digest)),
        );
        await run.inBatches(
          page.filter((_digest, index) => !live[index]),
          async (batch) =>
            void (run.counts.manifestsDeleted += await run.gc.deleteUntaggedManifests(repository, batch, run.cutoff, run.dryRun)),
        );
      }
    }
  }
}

/** Breadth-first over a Redis list (gc:queue) so the walk's memory stays in Redis, not here. */
async function markLiveManifests(run: GcRun): Promise<void> {
  for await (const repositories of run.gc.repositories()) {
    for (const repository of repositories) {
      for await (const digests of run.paced(run.gc.taggedManifests(repository))) await reach(run, repository, digests);
    }
  }
  for (let ids = await run.gc.dequeue(QUEUE_BATCH); ids.length > 0; ids = await run.gc.dequeue(QUEUE_BATCH)) {
    const manifests = ids.map(parseManifestId);
    const references = await run.gc.references(manifests.map((manifest) => manifest.digest));
    for (const [index, { repository, digest }] of manifests.entries()) {
      const { manifests: children, subject } = references[index]!;
      await reach(run, repository, subject ? [...children, subject] : children);
      for await (const referrers of run.gc.referrersOf(repository, digest)) await reach(run, repository, referrers);
    }
  }
}

async function reach(run: GcRun, repository: string, digests: string[]): Promise<void> {
  const added = await run.gc.addNew(
    'live',
    digests.map((digest) => manifestId(repository, digest)),
  );
  await run.gc.enqueue(added);
}
