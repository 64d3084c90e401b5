import { CodedError } from '../../platform/errors.js';
import type { Logger } from '../../platform/logger.js';
import { issueSecret, splitSecret } from '../auth/issued-secrets.js';
import { randomSecretMatches } from '../auth/secrets.js';
import type { BuildsConfig } from './build-config.js';
import { BuildErrors } from './build-errors.js';
import { BuildKeys } from './build-keys.js';
import type { BuildSpec, ClaimedBuildJob, FinishReport } from '../../platform/build-worker-api.js';
import type { BuildQueue } from './build-queue.js';
import type { BuildRecord } from './build-types.js';
import type { ProjectStore } from './project-store.js';
import { cacheTags, finalTags } from './tag-rules.js';
import type { Redis } from 'ioredis';
import type { TokenService } from '../auth/token-service.js';
import type { JobTokens } from './job-tokens.js';

const TOKEN_PREFIX = 'bbw';
const CLAIM_POLL_MS = 200;
/**
 * How long a new job waits for the worker that built its project last, while that worker is asking for work:
 * it has the commit's mirror and the cache at hand, where another worker fetches both (seconds). Past it, or
 * when that worker is busy or gone, any worker takes the job.
 */
const BUILDER_AFFINITY_MS = 5_000;

/** Told when builds start and end: metrics and the registry's outgoing webhooks. */
export interface BuildObserver {
  started(record: BuildRecord, waitedMs: number): void;
  finished(record: BuildRecord): void;
}

/** Mints the job-scoped push tokens; `signer` is undefined when auth is off. */
export interface PushTokens {
  jobs: JobTokens;
  signer: TokenService | undefined;
}

export interface WorkerLease {
  worker: string;
  attempt: number;
}

/**
 * The API build workers call, with a credential `berth build worker-token` issued: claim a job (long-poll),
 * renew its lease (and hear of a cancel), learn what its commit becomes, send log lines, report the end.
 */
export class WorkerService {
  private readonly keys: BuildKeys;
  private released = false;

  constructor(
    private readonly redis: Redis,
    prefix: string,
    private readonly queue: BuildQueue,
    private readonly projects: ProjectStore,
    private readonly settings: BuildsConfig,
    private readonly observer: BuildObserver,
    private readonly pushTokens: PushTokens,
    private readonly logger: Logger,
  ) {
    this.keys = new BuildKeys(prefix);
  }

  async issueToken(name: string, ttlMs: number): Promise<{ token: string; name: string; expiresAt: string }> {
    const issued = issueSecret(TOKEN_PREFIX);
    const expiresAt = Date.now() + ttlMs;
    await this.redis.hset(this.keys.workers(), issued.id, JSON.stringify({ hash: issued.hash, expiresAt, name }));
    return { token: issued.token, name, expiresAt: new Date(expiresAt).toISOString() };
  }

  /** The worker's name from `Authorization: Bearer <token>`; 401 otherwise. */
  async authenticate(authorization: string | undefined): Promise<string> {
    const parts = splitSecret(TOKEN_PREFIX, authorization?.replace(/^Bearer\s+/i, '') ?? '');
    const text = parts && (await this.redis.hget(this.keys.workers(), parts.id));
    const stored = text ? (JSON.parse(text) as { hash: string; expiresAt: number; name: string }) : undefined;
    if (!parts || !stored || stored.expiresAt < Date.now() || !randomSecretMatches(parts.secret, stored.hash))
      throw new CodedError(BuildErrors.WORKER_UNAUTHORIZED);
    return `${stored.name}-${parts.id}`;
  }

  /**
   * The oldest runnable job, waiting up to `waitMs` for one; undefined if none came or the worker hung up
   * (`gone`: no job is handed to a closed connection). A job queued on this replica is taken at once; one
   * another replica queued, at the next poll.
   */
  async claim(worker: string, agent: string, waitMs: number, gone: AbortSignal): Promise<ClaimedBuildJob | undefined> {
    const deadline = Date.now() + Math.min(waitMs, this.settings.claimWaitSeconds * 1000);
    const leaseMs = this.settings.leaseSeconds * 1000;
    const claimer = `${agent}@${worker}`;
    for (;;) {
      const mark = this.queue.changes.mark;
      const claim = await this.queue.claim(claimer, leaseMs, deadline, BUILDER_AFFINITY_MS);
      if (claim) {
        const record = await this.queue.record(claim.id);
        const project = record && (await this.projects.get(record.project));
        if (!record || !project) {
          await this.queue.finish(
            claim.id,
            record?.project ?? '',
            `${agent}@${worker}`,
            claim.attempt,
            failure('the project was removed'),
            {
              lastLines: [],
              maxLines: this.settings.maxLogLines,
            },
          );
          continue;
        }
        this.logger.info({ build: claim.id, attempt: claim.attempt, worker: `${agent}@${worker}` }, 'build claimed');
        this.observer.started(record, claim.waitedMs);
        return {
          id: claim.id,
          attempt: claim.attempt,
          leaseSeconds: this.settings.leaseSeconds,
          project: project.name,
          repository: record.repository,
          git: { url: project.git.url, credentials: project.git.credentials },
          ref: record.ref,
          commit: record.commit,
          build: { dockerfile: record.rule.dockerfile, context: record.rule.context, target: record.rule.target, cache: record.rule.cache },
          secrets: Object.entries(await this.projects.secrets(project.name)).map(([id, value]) => ({ id, value })),
          cache:
            project.cacheRepository === null
              ? null
              : { repository: project.cacheRepository, ...cacheTags(record.ref, project.git.defaultBranch) },
        };
      }
      if (Date.now() >= deadline || gone.aborted || this.released) return await this.noJob(claimer);
      await this.queue.changes.wait(mark, Math.min(CLAIM_POLL_MS, deadline - Date.now()), gone);
      if (gone.aborted || this.released) return await this.noJob(claimer);
    }
  }

  private async noJob(claimer: string): Promise<undefined> {
    await this.queue.stopWaiting(claimer);
    return undefined;
  }

  /** The registry is stopping: waiting claims answer now, with no job, so its drain does not wait out their long-polls. */
  release(): void {
    this.released = true;
    this.queue.changes.notify();
  }

  /** Renews the lease; true when the build was asked to cancel. */
  async renew(id: string, lease: WorkerLease): Promise<boolean> {
    const cancel = await this.queue.renew(id, lease.worker, lease.attempt, this.settings.leaseSeconds * 1000);
    if (cancel === undefined) throw lost(id);
    return cancel;
  }

  /** A token that pulls and pushes the job's repository and its project's cache repository only, while this attempt runs. */
  async pushToken(id: string, lease: WorkerLease): Promise<{ token: string | null }> {
    await this.renew(id, lease);
    const record = await this.queue.record(id);
    if (!record) throw lost(id);
    const cacheRepository = (await this.projects.get(record.project))?.cacheRepository;
    const repositories = cacheRepository ? [record.repository, cacheRepository] : [record.repository];
    return { token: this.pushTokens.jobs.mint(this.pushTokens.signer, id, lease.attempt, repositories) };
  }

  async appendLog(id: string, lease: WorkerLease, lines: string[]): Promise<void> {
    if (!(await this.queue.appendLog(id, lease.worker, lease.attempt, lines, this.settings.maxLogLines))) throw lost(id);
  }

  /** The fetched commit is recorded; the answer says what it becomes (Docker Hub's build variables among the args). */
  async source(
    id: string,
    lease: WorkerLease,
    commit: { sha: string; time: number; message: string },
    registryHost: string,
  ): Promise<BuildSpec> {
    const record = await this.queue.record(id);
    if (!record) throw lost(id);
    const tags = finalTags(record.tagTemplates, commit.sha);
    if (!(await this.queue.setSource(id, lease.worker, lease.attempt, commit.sha, tags))) throw lost(id);
    const repo = `${registryHost}/${record.repository}`;
    const project = await this.projects.get(record.project);
    return {
      tags,
      buildArgs: {
        ...record.rule.buildArgs,
        SOURCE_BRANCH: record.ref.name,
        SOURCE_COMMIT: commit.sha,
        COMMIT_MSG: commit.message,
        DOCKER_REPO: repo,
        DOCKER_TAG: tags[0] ?? '',
        IMAGE_NAME: `${repo}:${tags[0] ?? ''}`,
        SOURCE_DATE_EPOCH: String(commit.time),
      },
      labels: {
        'org.opencontainers.image.revision': commit.sha,
        'org.opencontainers.image.source': withoutUserinfo(project?.git.url ?? ''),
        'io.berth.build.ref': `refs/${record.ref.type === 'branch' ? 'heads' : 'tags'}/${record.ref.name}`,
        'io.berth.build.id': id,
      },
    };
  }

  /** The build's end, with its log's last lines (sent here rather than in a log call of their own). */
  async finish(id: string, lease: WorkerLease, report: FinishReport, lastLines: string[]): Promise<string> {
    const record = await this.queue.record(id);
    const log = { lastLines, maxLines: this.settings.maxLogLines };
    const state = record && (await this.queue.finish(id, record.project, lease.worker, lease.attempt, report, log));
    if (!state) throw lost(id);
    this.logger.info({ build: id, state, digest: report.digest, error: report.error || undefined }, 'build finished');
    const finished = await this.queue.record(id);
    if (finished) this.observer.finished(finished);
    return state;
  }
}

function failure(error: string): FinishReport {
  return { outcome: 'failed', digest: '', tags: [], error, steps: [] };
}

function lost(id: string): CodedError {
  return new CodedError(BuildErrors.LEASE_LOST, `build ${id} is no longer held by this worker`);
}

function withoutUserinfo(url: string): string {
  return url.replace(/^([a-z+]+:\/\/)[^@/]*@/i, '$1');
}
