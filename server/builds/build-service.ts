import { randomBytes } from 'node:crypto';
import { CodedError } from '../../platform/errors.js';
import type { Logger } from '../../platform/logger.js';
import type { BuildsConfig } from './build-config.js';
import { BuildErrors } from './build-errors.js';
import type { BuildQueue, NewBuild } from './build-queue.js';
import {
  FINISHED_STATES,
  PROJECT_NAME,
  publicProject,
  type BuildProject,
  type BuildRecord,
  type BuildState,
  type BuildTrigger,
  type GitRef,
  type projectInputSchema,
} from './build-types.js';
import { identifyForge, parseForgeEvent, verifySignature } from './forge-webhooks.js';
import type { ProjectStore } from './project-store.js';
import { defaultRule, matchRules, refTemplates } from './tag-rules.js';
import type { z } from 'zod';

export type ProjectInput = z.output<typeof projectInputSchema>;

/** What a forge webhook led to. */
export type HookOutcome =
  { status: 'pong' } | { status: 'ignored'; reason: string } | { status: 'duplicate' } | { status: 'queued'; builds: string[] };

interface PushedCommit {
  ref: GitRef;
  commit: string;
  message: string;
  trigger: BuildTrigger;
  delivery: string;
  retryOf: string | null;
}

/** Build projects, the forge webhooks that queue their builds, and the operators' view of builds. */
export class BuildService {
  constructor(
    private readonly projects: ProjectStore,
    private readonly queue: BuildQueue,
    private readonly settings: BuildsConfig,
    private readonly logger: Logger,
  ) {}

  /** Creates the project; the webhook secret is in the answer this once. */
  async createProject(name: string, input: ProjectInput) {
    if (!PROJECT_NAME.test(name))
      throw new CodedError(BuildErrors.REQUEST_INVALID, `a project name is lowercase letters, digits, ., _ and -: ${name}`);
    const project = this.projectOf(name, input, new Date().toISOString());
    if (!(await this.projects.put(project, 'create'))) throw new CodedError(BuildErrors.PROJECT_EXISTS, `project ${name} exists`);
    this.logger.info({ project: name, repository: project.repository }, 'build project created');
    return { ...publicProject(project, []), webhookSecret: project.webhookSecret };
  }

  /** Replaces the settings; the webhook secret and credentials are kept unless given. */
  async updateProject(name: string, input: ProjectInput) {
    const current = await this.requireProject(name);
    const project = this.projectOf(name, input, current.createdAt);
    if (input.webhookSecret === undefined) project.webhookSecret = current.webhookSecret;
    if (!(await this.projects.put(project, 'update'))) throw new CodedError(BuildErrors.PROJECT_UNKNOWN, `no project ${name}`);
    return publicProject(project, await this.projects.secretNames(name));
  }

  async showProject(name: string) {
    return publicProject(await this.requireProject(name), await this.projects.secretNames(name));
  }

  async listProjects() {
    return Promise.all(
      (await this.projects.list()).map(async (project) => publicProject(project, await this.projects.secretNames(project.name))),
    );
  }

  async removeProject(name: string): Promise<void> {
    if (!(await this.projects.remove(name))) throw new CodedError(BuildErrors.PROJECT_UNKNOWN, `no project ${name}`);
  }

  async setSecret(project: string, id: string, value: string): Promise<void> {
    await this.requireProject(project);
    await this.projects.setSecret(project, id, value);
  }

  async removeSecret(project: string, id: string): Promise<void> {
    await this.requireProject(project);
    if (!(await this.projects.removeSecret(project, id)))
      throw new CodedError(BuildErrors.REQUEST_INVALID, `project ${project} has no secret ${id}`);
  }

  /**
   * A forge's webhook: the signature is checked on the raw body before anything in it is read, then a push
   * queues one build per matching rule. Only Redis writes happen here; the build runs on a worker.
   */
  async receiveHook(projectName: string, header: (name: string) => string, body: Buffer): Promise<HookOutcome> {
    const project = await this.requireProject(projectName);
    const delivery = identifyForge(header);
    verifySignature(delivery.forge, header, body, project.webhookSecret);
    const event = parseForgeEvent(delivery, body);
    if (event.kind === 'ping') return { status: 'pong' };
    if (event.kind === 'ignored') return { status: 'ignored', reason: event.reason };
    const pushed = { ...event, trigger: delivery.forge, delivery: delivery.deliveryId, retryOf: null };
    const builds = this.buildsFor(project, pushed);
    if (builds.length === 0) return { status: 'ignored', reason: `no rule builds ${event.ref.type} ${event.ref.name}` };
    return this.enqueue(project, builds, pushed.delivery);
  }

  /** `berth build start PROJECT --ref main`: the ref's newest commit, resolved by the worker when it fetches. */
  async startBuild(projectName: string, ref: GitRef): Promise<string[]> {
    const project = await this.requireProject(projectName);
    const builds = this.buildsFor(project, { ref, commit: '', message: '', trigger: 'manual', delivery: '', retryOf: null });
    if (builds.length === 0) throw new CodedError(BuildErrors.NO_RULE_MATCHES, `no rule of ${projectName} builds ${ref.type} ${ref.name}`);
    const outcome = await this.enqueue(project, builds, '');
    return outcome.status === 'queued' ? outcome.builds : [];
  }

  /** A new build of the same rule and commit. */
  async retry(id: string): Promise<string> {
    const old = await this.requireBuild(id);
    if (!FINISHED_STATES.includes(old.state))
      throw new CodedError(BuildErrors.REQUEST_INVALID, `build ${id} is ${old.state}: cancel it first`);
    const project = await this.requireProject(old.project);
    const build: NewBuild = {
      job: { ...jobFields(old), trigger: 'retry', retryOf: id, createdAt: Date.now() },
      slot: slotOf(old.project, old.ruleIndex, old.ref),
    };
    const outcome = await this.enqueue(project, [build], '');
    return outcome.status === 'queued' ? outcome.builds[0]! : '';
  }

  async cancel(id: string): Promise<{ id: string; state: string }> {
    const state = await this.queue.cancel(id);
    if (state === undefined) throw new CodedError(BuildErrors.BUILD_UNKNOWN, `no build ${id}`);
    if (FINISHED_STATES.includes(state as BuildState) && state !== 'cancelled')
      throw new CodedError(BuildErrors.BUILD_FINISHED, `build ${id} has ${state}`);
    return { id, state };
  }

  async list(filter: { project?: string; state?: BuildState; limit: number }): Promise<BuildRecord[]> {
    return this.queue.list(
      filter.limit,
      (record) =>
        (filter.project === undefined || record.project === filter.project) &&
        (filter.state === undefined || record.state === filter.state),
    );
  }

  async requireBuild(id: string): Promise<BuildRecord> {
    const record = await this.queue.record(id);
    if (!record) throw new CodedError(BuildErrors.BUILD_UNKNOWN, `no build ${id}`);
    return record;
  }

  /** Log lines from `from` on, and whether more can come. */
  async logs(id: string, from: number): Promise<{ lines: string[]; next: number; finished: boolean }> {
    const record = await this.requireBuild(id);
    const lines = await this.queue.log(id, from);
    return { lines, next: from + lines.length, finished: FINISHED_STATES.includes(record.state) };
  }

  async requireProject(name: string): Promise<BuildProject> {
    const project = await this.projects.get(name);
    if (!project) throw new CodedError(BuildErrors.PROJECT_UNKNOWN, `no project ${name}`);
    return project;
  }

  private buildsFor(project: BuildProject, pushed: PushedCommit): NewBuild[] {
    return matchRules(project.rules, pushed.ref).map((matched) => ({
      job: {
        project: project.name,
        repository: project.repository,
        ruleIndex: matched.index,
        rule: matched.rule,
        ref: pushed.ref,
        commit: pushed.commit,
        message: pushed.message,
        trigger: pushed.trigger,
        tagTemplates: refTemplates(matched, pushed.ref),
        createdAt: Date.now(),
        retryOf: pushed.retryOf,
      },
      slot: slotOf(project.name, matched.index, pushed.ref),
    }));
  }

  private async enqueue(project: BuildProject, builds: NewBuild[], delivery: string): Promise<HookOutcome> {
    const ids = await this.queue.enqueue(project.name, builds, {
      concurrency: project.concurrency,
      cancelRunning: project.cancelRunning,
      delivery,
      deliveryTtlSeconds: this.settings.deliveryMemorySeconds,
    });
    if (ids === 'duplicate') return { status: 'duplicate' };
    this.logger.info({ project: project.name, builds: ids, ref: builds[0]?.job.ref, commit: builds[0]?.job.commit }, 'builds queued');
    return { status: 'queued', builds: ids };
  }

  private projectOf(name: string, input: ProjectInput, createdAt: string): BuildProject {
    return {
      name,
      repository: input.repository,
      git: input.git,
      webhookSecret: input.webhookSecret ?? randomBytes(24).toString('base64url'),
      rules: input.rules ?? [defaultRule(input.git.defaultBranch)],
      concurrency: input.concurrency,
      cancelRunning: input.cancelRunning,
      cacheRepository: input.cacheRepository,
      createdAt,
    };
  }
}

/** A newer build of the same project, rule and ref supersedes the older one. */
function slotOf(project: string, ruleIndex: number, ref: GitRef): string {
  return `${project}:${ruleIndex}:${ref.type}:${ref.name}`;
}

function jobFields(record: BuildRecord): Omit<NewBuild['job'], 'trigger' | 'retryOf' | 'createdAt'> {
  const { project, repository, ruleIndex, rule, ref, commit, message, tagTemplates } = record;
  return { project, repository, ruleIndex, rule, ref, commit, message, tagTemplates };
}
