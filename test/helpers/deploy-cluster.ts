import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestFn } from 'ava';
import { AgentDaemon } from './agent-daemon.js';
import { ADMIN, addAdmin, basic, type Credentials } from './auth-registry.js';
import { busyboxEntries, layerOf, pushLayout, writeImageLayout } from './agent-images.js';
import { run, type RunResult } from './exec.js';
import { RegistryProcess } from './registry-process.js';
import { TestHosts } from './test-hosts.js';

const BERTH_CLI = fileURLToPath(new URL('../../server/cli.js', import.meta.url));

/** A registry started with auth on needs a login for its admin API and pushes, and a token for every pull. */
function requiresAuth(registryEnv: Record<string, string>): boolean {
  return registryEnv.BERTH_AUTH__ENABLED === 'true';
}

/**
 * The controller settings of the real-agent deployment tests: a pass every 250 ms and a 5 s lease, so a change
 * converges in a second; a node is declared down after `nodeGraceSeconds` without a report, which each file
 * picks past the longest pause its agents take on purpose (a restart under CI's load takes tens of seconds).
 */
export function fastDeployEnv(nodeGraceSeconds: number): Record<string, string> {
  return {
    BERTH_DEPLOY__NODE_GRACE_SECONDS: String(nodeGraceSeconds),
    BERTH_DEPLOY__CONTROLLER_TICK_MS: '250',
    BERTH_DEPLOY__CONTROLLER_LEASE_SECONDS: '5',
  };
}

export interface ClusterNode {
  name: string;
  labels: Record<string, string>;
}

/** A JSON answer of the admin API, asserted field by field by the tests. */
export type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/**
 * A registry and real agents as separate hosts (TestHosts), each agent joined with `berth-agent daemon
 * --join`: the deployment tests' whole system. destroy() removes the agents' containers, the agents, the
 * registry and the namespaces, whatever state a failed test left them in.
 */
export class DeployCluster {
  private readonly agents = new Map<string, AgentDaemon>();
  private token = '';

  private constructor(
    readonly hosts: TestHosts,
    private current: RegistryProcess,
    private readonly registryEnv: Record<string, string>,
    private readonly workDir: string,
    /** The nodes' names, in the order of the hosts. */
    readonly nodes: string[],
  ) {}

  static async start(nodes: ClusterNode[], registryEnv: Record<string, string>): Promise<DeployCluster> {
    const hosts = await TestHosts.create(nodes.length, 'h18');
    const workDir = await mkdtemp(path.join(tmpdir(), 'berth-h18-'));
    let registry: RegistryProcess | undefined;
    try {
      const dataDir = await mkdtemp(path.join(workDir, 'registry-'));
      registry = await RegistryProcess.start({ host: hosts.gateway, env: registryEnv, dataDir });
      if (requiresAuth(registryEnv)) await addAdmin(registry);
      const cluster = new DeployCluster(
        hosts,
        registry,
        registryEnv,
        workDir,
        nodes.map((node) => node.name),
      );
      cluster.token = (await cluster.admin('POST', 'nodes/tokens', {})).body.token as string;
      try {
        await Promise.all(nodes.map((node, index) => cluster.startAgent(node, index)));
      } catch (error) {
        await cluster.destroy();
        throw error;
      }
      return cluster;
    } catch (error) {
      await registry?.destroy();
      await hosts.destroy();
      await rm(workDir, { recursive: true, force: true });
      throw error;
    }
  }

  get registry(): RegistryProcess {
    return this.current;
  }

  /**
   * Kills the registry (SIGKILL: a crash, its Redis with it; its AOF keeps every acknowledged write) and
   * starts it again on the same data directory, address and port: the agents' calls fail meanwhile.
   */
  async restartRegistry(): Promise<void> {
    await this.current.stop('SIGKILL');
    this.current = await RegistryProcess.start({
      host: this.hosts.gateway,
      env: this.registryEnv,
      dataDir: this.current.dataDir,
      port: this.current.port,
    });
  }

  /** The joined agent of a node; its address is `addressOf(name)`. */
  agent(name: string): AgentDaemon {
    const agent = this.agents.get(name);
    if (!agent) throw new Error(`no agent ${name}`);
    return agent;
  }

  addressOf(name: string): string {
    const host = this.hosts.hosts[this.nodes.indexOf(name)];
    if (!host) throw new Error(`no node ${name}`);
    return host.address;
  }

  private async startAgent(node: ClusterNode, index: number): Promise<void> {
    const labels = Object.entries(node.labels).flatMap(([key, value]) => ['--label', `${key}=${value}`]);
    const args = ['--insecure-registry', this.registry.host, '--join', this.registry.url, '--token', this.token, '--node-name', node.name];
    this.agents.set(node.name, await AgentDaemon.start([...args, ...labels], {}, this.hosts.hosts[index]!.netns));
  }

  /** With auth on (BERTH_AUTH__ENABLED), the admin's login: what the admin API, `berth` and pushes use. Never given to the agents. */
  private get adminLogin(): Credentials | undefined {
    return requiresAuth(this.registryEnv) ? ADMIN : undefined;
  }

  private get adminEnv(): Record<string, string> {
    const login = this.adminLogin;
    return login ? { BERTH_ADMIN_USER: login.username, BERTH_ADMIN_PASSWORD: login.password } : {};
  }

  async admin(method: string, apiPath: string, body?: unknown): Promise<{ status: number; body: Json }> {
    const login = this.adminLogin;
    const response = await fetch(`${this.registry.url}/admin/v1/${apiPath}`, {
      method,
      headers: {
        ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
        ...(login ? { Authorization: basic(login) } : {}),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, body: text ? (JSON.parse(text) as Json) : {} };
  }

  /** `berth <args> --registry <url>`, as a user runs it. */
  berth(args: string[], env: Record<string, string> = {}): Promise<RunResult> {
    return run(process.execPath, [BERTH_CLI, ...args, '--registry', this.registry.url], {
      allowFailure: true,
      env: { ...this.adminEnv, ...env },
      timeoutMs: 90_000,
    });
  }

  /** `berth <args>` left running (`service logs -f`), for a test to read its output as it comes, then kill. */
  spawnBerth(args: string[]): ChildProcessWithoutNullStreams {
    return spawn(process.execPath, [BERTH_CLI, ...args, '--registry', this.registry.url], { env: { ...process.env, ...this.adminEnv } });
  }

  /**
   * Pushes a busybox web server answering `body` on port 80; returns the manifest digest. `healthy`: with a
   * HEALTHCHECK that fetches the page; `unhealthy`: one that always fails; `shell-less`: no /bin/sh in the
   * image at all, and no HEALTHCHECK (a compose healthcheck must run without a shell).
   */
  async pushWebImage(
    repository: string,
    tag: string,
    body: string,
    kind: 'healthy' | 'unhealthy' | 'shell-less' = 'healthy',
  ): Promise<string> {
    const layout = await mkdtemp(path.join(this.workDir, 'layout-'));
    const layer = await layerOf(
      [
        ...(await busyboxEntries(kind === 'shell-less' ? ['httpd', 'wget'] : ['sh', 'httpd', 'wget', 'false', 'true'])),
        { name: 'www', type: 'directory' },
        { name: 'www/index.html', content: body },
      ],
      'gzip',
    );
    const check = kind === 'healthy' ? 'wget -q -O /dev/null http://127.0.0.1/' : 'false';
    const { manifestDigest } = await writeImageLayout(layout, tag, {
      layers: [layer],
      config: {
        Cmd: ['httpd', '-f', '-p', '80', '-h', '/www'],
        Env: ['PATH=/bin'],
        ...(kind === 'shell-less' ? {} : { Healthcheck: { Test: ['CMD-SHELL', check], Interval: 200e6, Timeout: 10e9, Retries: 3 } }),
      },
    });
    await pushLayout(layout, tag, `${this.registry.host}/${repository}:${tag}`, this.adminLogin);
    return manifestDigest;
  }

  /** The end of every agent's log, for a failed test's report. */
  logs(): string {
    return [...this.agents.entries()].map(([name, agent]) => `--- ${name}\n${agent.logs.slice(-4000)}`).join('\n');
  }

  async destroy(): Promise<void> {
    await Promise.all([...this.agents.values()].map((agent) => agent.destroy().catch(() => undefined)));
    await this.registry.destroy();
    await this.hosts.destroy();
    await rm(this.workDir, { recursive: true, force: true });
  }
}

/**
 * One two-node cluster (n1, n2) and a scratch directory for a whole test file, each step a test of its own
 * (under load a step takes minutes, and ava's timeout counts from the last finished test): made before the
 * tests and handed to `use`, destroyed after them; a failed test shows the agents' and the registry's logs.
 */
export function withTwoNodeCluster(
  test: TestFn,
  env: Record<string, string>,
  use: (made: { cluster: DeployCluster; directory: string }) => void,
): void {
  let made: { cluster: DeployCluster; directory: string } | undefined;
  test.before(async () => {
    const directory = await mkdtemp(path.join(tmpdir(), 'berth-h18-compose-'));
    const cluster = await DeployCluster.start(
      [
        { name: 'n1', labels: {} },
        { name: 'n2', labels: {} },
      ],
      env,
    ).catch(async (error: unknown) => {
      await rm(directory, { recursive: true, force: true });
      throw error;
    });
    made = { cluster, directory };
    use(made);
  });
  test.after.always(async () => {
    if (!made) return;
    await made.cluster.destroy();
    await rm(made.directory, { recursive: true, force: true });
  });
  test.afterEach.always((t) => {
    if (!t.passed && made) t.log(`${made.cluster.logs()}\n--- registry\n${made.cluster.registry.logs.slice(-4000)}`);
  });
}
