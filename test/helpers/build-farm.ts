import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { AgentDaemon } from './agent-daemon.js';
import { ADMIN, AuthRegistry } from './auth-registry.js';
import { DockerDaemon } from './dockerd.js';
import { eventually } from './eventually.js';
import { postHook, type ForgeRequest } from './forge-hooks.js';
import { request } from './http-client.js';
import { GitHttpServer, type GitWorkTree } from './git-http-server.js';
import type { RegistryProcess } from './registry-process.js';
import { createBusyboxRootfs } from './test-images.js';
import { TestHosts } from './test-hosts.js';
import { WebhookReceiver } from './webhook-receiver.js';

export const WEBHOOK_SECRET = 'the-project-webhook-secret';
export const GIT_TOKEN = 'git-token-not-to-be-seen';
/** Signs the registry's outgoing build events to the farm's receiver. */
export const EVENTS_SECRET = 'outgoing-events-secret';
const LEASE_SECONDS = 3;

/** The parts of an image's config the tests compare. */
export interface ImageConfigView {
  config: { Labels?: Record<string, string> };
  rootfs: { diff_ids: string[] };
  history: Array<{ created_by?: string }>;
}

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
  createdAt: number;
  claimedAt: number | null;
  finishedAt: number | null;
}

export interface BuildFarmOptions {
  /**
   * `loopback`: the agents share this host's network, and dockerd pulls and runs what they built.
   * `namespaces`: each agent is a host of its own (TestHosts, names tagged h17), reaching the registry and git
   * on the test bridge; no dockerd (it would pull over plain http only from loopback).
   */
  hosts: 'loopback' | 'namespaces';
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
    private readonly dockerd: DockerDaemon | undefined,
    private readonly hosts: TestHosts | undefined,
    readonly scratch: string,
    readonly receiver: WebhookReceiver,
  ) {}

  static async start(options: BuildFarmOptions = { hosts: 'loopback' }): Promise<BuildFarm> {
    const hosts = options.hosts === 'namespaces' ? await TestHosts.create(2, 'h17') : undefined;
    try {
      return await BuildFarm.startOn(hosts);
    } catch (error) {
      await hosts?.destroy();
      throw error;
    }
  }

  private static async startOn(hosts: TestHosts | undefined): Promise<BuildFarm> {
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
    const host = hosts?.gateway;
    const [auth, git, docker] = await Promise.all([
      AuthRegistry.start({
        host,
        args: ['--config', config],
        env: { BERTH_BUILDS__LEASE_SECONDS: String(LEASE_SECONDS), BERTH_BUILDS__CLAIM_WAIT_SECONDS: '2' },
      }),
      GitHttpServer.start({ token: GIT_TOKEN, host }),
      hosts ? undefined : DockerDaemon.start(),
    ]);
    const registry = auth.process;
    const farm = new BuildFarm(auth, git, [], docker, hosts, scratch, receiver);
    await docker?.docker(['login', '--username', ADMIN.username, '--password-stdin', registry.host], { input: ADMIN.password });
    const { token } = (await farm.admin('POST', 'build-workers/tokens', { name: 'ci' })) as { token: string };
    farm.agents.push(
      ...(await Promise.all(
        ['a1', 'a2'].map((name, index) =>
          AgentDaemon.start(
            ['--build-worker', '--registry', registry.url, '--worker-token', token, '--worker-name', name],
            {},
            hosts?.hosts[index]?.netns,
          ),
        ),
      )),
    );
    return farm;
  }

  get docker(): DockerDaemon {
    if (!this.dockerd) throw new Error('this build farm has no dockerd (its agents are in network namespaces)');
    return this.dockerd;
  }

  get registry(): RegistryProcess {
    return this.auth.process;
  }

  async stop(): Promise<void> {
    await Promise.all([...this.agents.map((agent) => agent.destroy()), this.dockerd?.stop()]);
    await Promise.all([this.registry.destroy(), this.git.stop(), this.receiver.stop()]);
    await this.hosts?.destroy();
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
  async project(name: string, rules: object[], settings: { concurrency?: number; cacheRepository?: string } = {}): Promise<GitWorkTree> {
    const work = await this.git.createRepository(name);
    await createBusyboxRootfs(path.join(work.dir, 'rootfs'), 'build-farm');
    await this.admin('POST', `builds/projects/${name}`, {
      repository: `team/${name}`,
      git: { url: this.git.url(name), credentials: { type: 'token', token: GIT_TOKEN } },
      webhookSecret: WEBHOOK_SECRET,
      rules,
      concurrency: settings.concurrency ?? 2,
      cacheRepository: settings.cacheRepository ?? null,
    });
    return work;
  }

  /** An image as the registry holds it: its manifest's digest, its layers' digests and its config. */
  async image(repository: string, reference: string): Promise<{ digest: string; layers: string[]; config: ImageConfigView }> {
    const token = await this.auth.token([`repository:${repository}:pull`], ADMIN);
    const get = async (kind: string, name: string, accept: string) => {
      const response = await request(this.registry.url, `/v2/${repository}/${kind}/${name}`, {
        headers: { Authorization: `Bearer ${token}`, Accept: accept },
      });
      if (!response.ok) throw new Error(`${kind} ${repository}:${name}: ${response.status} ${await response.text()}`);
      return response;
    };
    const fetched = await get('manifests', reference, 'application/vnd.oci.image.manifest.v1+json');
    const manifest = (await fetched.json()) as { config: { digest: string }; layers: Array<{ digest: string }> };
    const config = (await (await get('blobs', manifest.config.digest, '*/*')).json()) as ImageConfigView;
    return { digest: fetched.headers.get('docker-content-digest') ?? '', layers: manifest.layers.map((layer) => layer.digest), config };
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
