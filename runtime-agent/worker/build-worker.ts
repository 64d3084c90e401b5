import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../../platform/logger.js';
import { formatBuildEvent, type BuildEvent } from '../build/build-progress.js';
import type { CacheReference } from '../build/registry-cache.js';
import type { ImageBuilder } from '../build/builder.js';
import type { ContentStore } from '../content/content-store.js';
import { pushImage, tagPushedImage } from '../registry/image-pusher.js';
import type { PushEvent } from '../verbs-api.js';
import type { RegistryAccess, RegistryConnector } from '../registry/registry-access.js';
import { resolveInRoot } from '../unpack/rooted-path.js';
import { fetchCommit, writeCommitFiles, type CheckoutRequest } from './git-checkout.js';
import type { GitMirrors } from './git-mirrors.js';
import type { BuildSpec, ClaimedBuildJob, FinishReport } from '../../platform/build-worker-api.js';
import { LeaseLostError, type WorkerClient } from './worker-client.js';
import { JobLog } from './job-log.js';

export interface BuildWorkerServices {
  client: WorkerClient;
  builder: ImageBuilder;
  content: ContentStore;
  /** Registry clients: the job's cache and image go to the worker's registry with the job's token. */
  connector: RegistryConnector;
  /** Each job's checkout and private files, removed after the job. */
  workRoot: string;
  /** The projects' git mirrors, kept between jobs within their limits. */
  mirrors: GitMirrors;
  logger: Logger;
}

const CLAIM_WAIT_SECONDS = 20;
/** A job's token is asked for again once this old: the registry's tokens live 10 s at the least. */
const TOKEN_REUSE_MS = 5_000;
const ERROR_BACKOFF_MS = 2_000;

/**
 * An agent's builder role: claims one job at a time from the registry, holds its lease (renewed at a third of
 * its length; a cancel heard there aborts the build), fetches the commit, builds it with the agent's
 * builder and pushes the image under the rule's tags. A job whose lease was lost is dropped silently: the
 * registry has given it to another worker.
 */
export class BuildWorker {
  private stopped = false;
  private readonly current = new AbortController();
  private loop: Promise<void> | undefined;

  constructor(private readonly services: BuildWorkerServices) {}

  start(): void {
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.current.abort();
    await this.loop;
  }

  private async run(): Promise<void> {
    const { client, logger } = this.services;
    await this.pruneMirrors();
    while (!this.stopped) {
      try {
        const job = await client.claim(CLAIM_WAIT_SECONDS, this.current.signal);
        if (job) {
          await this.runJob(job);
          await this.pruneMirrors();
        }
      } catch (error) {
        if (this.stopped) return;
        logger.warn({ err: error }, 'build worker: the registry could not be reached');
        await sleep(ERROR_BACKOFF_MS);
      }
    }
  }

  /** Between jobs (one runs at a time), so no job is reading a mirror it removes. */
  private async pruneMirrors(): Promise<void> {
    try {
      const pruned = await this.services.mirrors.prune();
      if (pruned.removed.length > 0) this.services.logger.info(pruned, 'git mirrors pruned');
    } catch (error) {
      this.services.logger.warn({ err: error }, 'git mirrors could not be pruned');
    }
  }

  private async runJob(job: ClaimedBuildJob): Promise<void> {
    const { client, logger } = this.services;
    const log = logger.child({ build: job.id, attempt: job.attempt });
    const abort = new AbortController();
    const stopOnShutdown = () => abort.abort();
    this.current.signal.addEventListener('abort', stopOnShutdown);
    let leaseLost = false;
    const renewal = setInterval(
      () => {
        client.renew(job).then(
          (cancel) => {
            if (cancel) abort.abort();
          },
          (error: unknown) => {
            if (!(error instanceof LeaseLostError)) return log.warn({ err: error }, 'lease renewal failed; retrying');
            leaseLost = true;
            abort.abort();
          },
        );
      },
      Math.max(500, (job.leaseSeconds * 1000) / 3),
    );
    const jobLog = new JobLog(
      client,
      job,
      job.secrets.map((secret) => secret.value),
    );
    const dir = path.join(this.services.workRoot, `${job.id}-${job.attempt}`);
    let report: FinishReport;
    try {
      report = await this.build(job, dir, jobLog, abort.signal);
    } catch (error) {
      const message = abort.signal.aborted ? 'cancelled' : (error as Error).message;
      jobLog.line(`ERROR: ${message}`);
      report = { outcome: 'failed', digest: '', tags: [], error: message, steps: jobLog.steps() };
    } finally {
      clearInterval(renewal);
      this.current.signal.removeEventListener('abort', stopOnShutdown);
      await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    }
    if (leaseLost || this.stopped) return log.warn('build abandoned: its lease is lost or the agent is stopping');
    try {
      await client.finish(job, { ...report, error: jobLog.redact(report.error) }, await jobLog.close());
      log.info({ outcome: report.outcome, digest: report.digest }, 'build finished');
    } catch (error) {
      log.warn({ err: error }, 'the build result could not be reported');
    }
  }

  private async build(job: ClaimedBuildJob, dir: string, jobLog: JobLog, signal: AbortSignal): Promise<FinishReport> {
    const { client } = this.services;
    const checkout = path.join(dir, 'source');
    const refName = `refs/${job.ref.type === 'branch' ? 'heads' : 'tags'}/${job.ref.name}`;
    jobLog.line(`fetching ${job.commit || refName} from ${job.git.url.replace(/\/\/[^@/]*@/, '//')}`);
    const mirror = await this.services.mirrors.use(job.project, job.git.url);
    const access = jobAccess(client, job);
    // The token the cache import and the push present is minted while git fetches.
    access.token().catch(() => undefined);
    const source: CheckoutRequest = {
      url: job.git.url,
      credentials: job.git.credentials,
      commit: job.commit,
      ref: refName,
      mirror,
      dir: checkout,
      privateDir: path.join(dir, 'private'),
      signal,
      output: (line) => jobLog.line(line),
    };
    const commit = await jobLog.phase('[source] git fetch', () => fetchCommit(source));
    // What the commit becomes is asked while its files are written; a refusal waits for git to end before the job's directory goes.
    const writing = jobLog.phase('[source] checkout', () => writeCommitFiles(source, commit.sha));
    const spec = await client.source(job, commit).catch(async (error: unknown) => {
      await writing.catch(() => undefined);
      throw error;
    });
    await writing;
    const cache = this.cacheReferences(job);
    jobLog.line(`building ${commit.sha} as ${spec.tags.join(', ')}`);
    const contextDir = await resolveInRoot(checkout, job.build.context);
    const dockerfilePath = await resolveInRoot(contextDir, job.build.dockerfile);
    const dockerfile = await readFile(dockerfilePath, 'utf8').catch(() => {
      throw new Error(`${job.build.dockerfile} not found in ${job.build.context} of ${commit.sha}`);
    });
    const result = await this.services.builder.build(
      {
        dockerfile,
        dockerfileName: path.basename(job.build.dockerfile),
        contextDir,
        buildArgs: new Map(Object.entries(spec.buildArgs)),
        target: job.build.target ?? undefined,
        noCache: !job.build.cache,
        labels: spec.labels,
        tags: [],
        secrets: new Map(job.secrets.map((secret) => [secret.id, Buffer.from(secret.value)])),
        sourceDateEpoch: commit.time,
        signal,
        cacheFrom: cache.from,
        cacheTo: cache.to,
        push: false,
        registryAccess: access,
        network: 'default',
        pull: false,
        platform: undefined,
        // Automated builds push OCI images, the builder's default.
        mediaTypes: 'oci',
      },
      (event: BuildEvent) => jobLog.event(event, formatBuildEvent(event)),
    );
    await jobLog.phase(`[push] ${job.repository}`, () => this.push(job, spec, result.manifestDigest, access, jobLog));
    return { outcome: 'succeeded', digest: result.manifestDigest, tags: spec.tags, error: '', steps: jobLog.steps() };
  }

  /** The job's cache tags (chosen by the registry) as the builder's cache references. */
  private cacheReferences(job: ClaimedBuildJob): { from: CacheReference[]; to: CacheReference | undefined } {
    if (job.cache === null) return { from: [], to: undefined };
    const { repository } = job.cache;
    const reference = (tag: string): CacheReference => ({ registry: this.services.client.registryHost, repository, tag });
    return { from: job.build.cache ? job.cache.from.map(reference) : [], to: reference(job.cache.to) };
  }

  /** The blobs and the manifest under the first tag, then the manifest alone under each other tag. */
  private async push(job: ClaimedBuildJob, spec: BuildSpec, manifestDigest: string, access: RegistryAccess, jobLog: JobLog): Promise<void> {
    const [first, ...others] = spec.tags;
    if (first === undefined) return;
    const registry = this.services.client.registryHost;
    const deps = {
      content: this.services.content,
      uploadClient: await this.services.connector.uploader(registry, job.repository, access),
      report: (event: PushEvent) => {
        if (event.type === 'status') jobLog.line(event.message);
      },
    };
    await pushImage({ manifestDigest, mountFrom: undefined }, { registry, repository: job.repository, tag: first }, deps);
    await Promise.all(others.map((tag) => tagPushedImage(manifestDigest, tag, deps)));
  }
}

/** The job's access to its registry: its token, minted by the registry for this attempt, reused for a few seconds. */
function jobAccess(client: WorkerClient, job: ClaimedBuildJob): Extract<RegistryAccess, { type: 'scoped-token' }> {
  let minted: { token: Promise<string | null>; at: number } | undefined;
  return {
    type: 'scoped-token',
    token: () => {
      if (!minted || performance.now() - minted.at > TOKEN_REUSE_MS) {
        const token = client.pushToken(job).then((answer) => answer.token);
        minted = { token, at: performance.now() };
        // A failed mint is asked again at the next use, not reused.
        token.catch(() => (minted = undefined));
      }
      return minted.token;
    },
  };
}
