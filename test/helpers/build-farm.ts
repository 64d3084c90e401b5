import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { AgentDaemon } from './agent-daemon.js';
import { ADMIN, AuthRegistry } from './auth-registry.js';
import { DockerDaemon } from './dockerd.js';
import { eventually } from './eventually.js';
import { postHook, type ForgeRequest } from './forge-hooks.js';
import { GitHttpServer, type GitWorkTree } from './git-http-server.js';
import type { RegistryProcess } from './registry-process.js';
import { createBusyboxRootfs } from './test-images.js';
import { WebhookReceiver } from './webhook-receiver.js';

export const WEBHOOK_SECRET = 'the-project-webhook-secret';
export const GIT_TOKEN = 'git-token-not-to-be-seen';
/** Signs the registry's outgoing build events to the farm's receiver. */
export const EVENTS_SECRET = 'outgoing-events-secret';
const LEASE_SECONDS = 3;

export interface BuildView {
  id: string;
  state: string;
  worker: string;
  attempt: number;
  commit: string;
  digest: string;
  tags: string[];
  error: string;
  steps: Array<{ name: string; seconds: number; cached: boolean }>;
}

/**
 * Automated builds with real parts: a git repository served by git's own http-backend (behind an
 * HTTPS-style token), a registry with token auth on (so the agents push with their jobs' tokens; 3 s leases), two `berth-agent daemon --build-worker` agents (a1, a2), and
 * dockerd to pull and run what they built and pushed; the registry's build events go to a webhook receiver.
 */
export class BuildFarm {
  private constructor(
    private readonly auth: AuthRegistry,
    readonly git: GitHttpServer,
    readonly agents: AgentDaemon[],
    readonly docker: DockerDaemon,
    readonly scratch: string,
    readonly receiver: WebhookReceiver,
  ) {}

  static async start(): Promise<BuildFarm> {
    const scratch = await mkdtemp(path.join(tmpdir(), 'berth-build-farm-'));
    const receiver = new WebhookReceiver();
    await receiver.start();
    const config = path.join(scratch, 'registry.yaml');
    const endpoint = {
      name: 'builds',
      url: receiver.url,
      secret: EVENTS_SECRET,
      actions: ['build.started', 'build.succeeded', 'build.failed'],
    };
    await writeFile(config, JSON.stringify({ webhooks: { endpoints: [endpoint] } }));
    const [auth, git, docker] = await Promise.all([
      AuthRegistry.start({
        args: ['--config', config],
        env: { BERTH_BUILDS__LEASE_SECONDS: String(LEASE_SECONDS), BERTH_BUILDS__CLAIM_WAIT_SECONDS: '2' },
      }),
      GitHttpServer.start({ token: GIT_TOKEN }),
      DockerDaemon.start(),
    ]);
    const registry = auth.process;
    const farm = new BuildFarm(auth, git, [], docker, scratch, receiver);
    await docker.docker(['login', '--username', ADMIN.username, '--password-stdin', registry.host], { input: ADMIN.password });
    const { token } = (await farm.admin('POST', 'build-workers/tokens', { name: 'ci' })) as { token: string };
    farm.agents.push(
      ...(await Promise.all(
        ['a1', 'a2'].map((name) =>
          AgentDaemon.start(['--build-worker', '--registry', registry.url, '--worker-token', token, '--worker-name', name]),
        ),
      )),
    );
    return farm;
  }

  get registry(): RegistryProcess {
    return this.auth.process;
  }

  async stop(): Promise<void> {
    await Promise.all([...this.agents.map((agent) => agent.destroy()), this.docker.stop()]);
    await Promise.all([this.registry.destroy(), this.git.stop(), this.receiver.stop()]);
    await rm(this.scratch, { recursive: true, force: true });
  }

  admin(method: string, route: string, body?: unknown): Promise<unknown> {
    return this.auth.admin(method, `/${route}`, body);
  }

  build(id: string): Promise<BuildView> {
    return this.admin('GET', `builds/${id}`) as Promise<BuildView>;
  }

  async logLines(id: string): Promise<string[]> {
    return ((await this.admin('GET', `builds/${id}/logs`)) as { lines: string[] }).lines;
  }

  /** Waits (bounded) for a build to end. */
  finished(id: string, timeoutMs = 60_000): Promise<BuildView> {
    return eventually(
      () => this.build(id),
      (record) => !['queued', 'running'].includes(record.state),
      timeoutMs,
    );
  }

  /** Waits (bounded) for a log line of the build to match. */
  async logShows(id: string, pattern: RegExp, timeoutMs = 30_000): Promise<void> {
    await eventually(
      () => this.logLines(id),
      (lines) => lines.some((line) => pattern.test(line)),
      timeoutMs,
    );
  }

  /** Posts the hook; the ids of the builds it queued. */
  async queue(project: string, hook: ForgeRequest): Promise<string[]> {
    const answer = await postHook(this.registry.url, project, hook);
    if (answer.status !== 202) throw new Error(`hook not queued: ${JSON.stringify(answer)}`);
    return answer.body.builds as string[];
  }

  /**
   * A repository served over HTTP with a busybox root filesystem (the same in every repository, so an agent's
   * cache holds its COPY) to build FROM scratch, and its project `team/<name>`.
   */
  async project(name: string, rules: object[], concurrency = 2): Promise<GitWorkTree> {
    const work = await this.git.createRepository(name);
    await createBusyboxRootfs(path.join(work.dir, 'rootfs'), 'build-farm');
    await this.admin('POST', `builds/projects/${name}`, {
      repository: `team/${name}`,
      git: { url: this.git.url(name), credentials: { type: 'token', token: GIT_TOKEN } },
      webhookSecret: WEBHOOK_SECRET,
      rules,
      concurrency,
    });
    return work;
  }

  /** Pulls with docker and runs it (no network); its labels and history as docker shows them. */
  async pullAndRun(reference: string): Promise<{ output: string; labels: Record<string, string>; history: string; created: string }> {
    await this.docker.docker(['pull', '--quiet', reference]);
    const output = (await this.docker.docker(['run', '--rm', '--network', 'none', reference])).stdout.trim();
    const inspected = (await this.docker.docker(['image', 'inspect', '--format', '{{json .Config.Labels}}|{{.Created}}', reference]))
      .stdout;
    const [labels = '{}', created = ''] = inspected.trim().split('|');
    const history = (await this.docker.docker(['history', '--no-trunc', '--format', '{{.CreatedBy}}', reference])).stdout;
    return { output, labels: JSON.parse(labels) as Record<string, string>, history, created };
  }
}

/** A Dockerfile FROM scratch on the repository's rootfs/, recording the commit and tag it was built as in /built-from. */
export function sourceDockerfile(...steps: string[]): string {
  return [
    'FROM scratch',
    'COPY rootfs/ /',
    'ARG SOURCE_COMMIT',
    'ARG DOCKER_TAG',
    'RUN echo "$SOURCE_COMMIT $DOCKER_TAG" > /built-from',
    ...steps,
    'CMD ["cat", "/built-from"]',
    '',
  ].join('\n');
}
