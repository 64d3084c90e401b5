import type { GcRun } from './gc-run.js';
import { markRepositoryBlobs } from './mark.js';

/**
 * Drops each repository's links to blobs none of its manifests names (left by deleted manifests, or by
 * uploads never followed by a manifest), so the repository no longer sees them. Links of blobs used
 * within the grace period stay: a push uploads its blobs before it PUTs the manifest that names them.
 */
export async function dropUnreferencedLinks(run: GcRun): Promise<void> {
  for await (const repositories of run.paced(run.gc.linkedRepositories())) {
    for (const repository of repositories) await dropRepositoryLinks(run, repository);
  }
  await run.gc.clear('repo-mark');
}

async function dropRepositoryLinks(run: GcRun, repository: string): Promise<void> {
  await run.gc.clear('repo-mark');
  await markRepositoryBlobs(run, repository, 'repo-mark');
  for await (const links of run.paced(run.gc.linksOf(repository))) {
    const referenced = await run.gc.whichAreMembers('repo-mark', links);
    await run.inBatches(
      links.filter((_digest, index) => !referenced[index]),
      async (batch) => void (run.counts.linksDeleted += await run.gc.unlinkBlobs(repository, batch, run.cutoff, run.dryRun)),
    );
  }
}
