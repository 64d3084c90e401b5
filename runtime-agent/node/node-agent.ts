import { lookup } from 'node:dns/promises';
import { availableParallelism, hostname, totalmem } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../../platform/logger.js';
import { runHostCommand } from '../support/host-command.js';
import type { NodeConfig } from '../config/agent-config.js';
import type { Assignment } from './assignment.js';
import type { RegistryAccess } from '../registry/registry-access.js';
import type { Converger } from './converger.js';
import type { NodeCredentialFile } from './node-credential-file.js';
import { NodePullAccess } from './node-pull-access.js';
import type { LogRequest } from './replica-logs.js';
import { NodeRejectedError, NodeRequestRefusedError, RegistryNodeClient, type NodeIdentity } from './registry-node-client.js';

/** How often the node reports its replicas (its heartbeat) and steps its containers towards the assignments. */
const TICK_MS = 1_000;
/** How long one assignments request may wait for a change. */
const POLL_WAIT_SECONDS = 20;
const RETRY_MS = 1_000;

/**
 * The agent as a deployment node: joins the registry, then long-polls its assignments and, every tick and
 * at each change, steps its containers towards them and reports every replica's state (which is also the
 * heartbeat). Only HTTP to the registry: no agent ever reaches the registry's Redis. A credential the
 * registry stops accepting (an operator removed the node, or it was down and joined again elsewhere)
 * makes it join again.
 */
export class NodeAgent {
  /**
   * Undefined until the registry first answers: a restarted agent that converged towards "nothing" before
   * then would stop the replicas it adopted and then race their successors for the published ports.
   */
  private assignments: Assignment[] | undefined;
  private version = 0;
  private joined = false;
  private readonly stopping = new AbortController();
  private wakeUp: (() => void) | undefined;
  private loops: Promise<void>[] = [];

  private constructor(
    private readonly config: NodeConfig,
    private readonly identity: NodeIdentity,
    private readonly client: RegistryNodeClient,
    private readonly credentialFile: NodeCredentialFile,
    private readonly converger: Converger,
    private readonly pulls: NodePullAccess,
    private readonly logger: Logger,
  ) {}

  /**
   * Resumes as the node this agent joined as before (its saved credential), else joins (a refused token or a
   * name in use is an error the daemon stops with; an unreachable registry is tried again), and runs. Its
   * converger pulls with the node's pull token (`pullAccess`), not with a login saved on the host.
   */
  static async start(
    config: NodeConfig,
    credentialFile: NodeCredentialFile,
    convergerFor: (pullAccess: RegistryAccess) => Converger,
    logger: Logger,
  ): Promise<NodeAgent> {
    const identity = await nodeIdentity(config);
    const client = new RegistryNodeClient(config.joinUrl);
    const pulls = new NodePullAccess(() => client.pullToken());
    const agent = new NodeAgent(
      config,
      identity,
      client,
      credentialFile,
      convergerFor(pulls.access),
      pulls,
      logger.child({ node: identity.name }),
    );
    const saved = await credentialFile.read(config.joinUrl, identity.name);
    if (saved !== undefined) {
      client.resume(saved);
      agent.joined = true;
      agent.logger.info({ registry: config.joinUrl }, 'resuming as the node this agent joined as before');
    } else
      try {
        await agent.join();
      } catch (error) {
        if (error instanceof NodeRejectedError) throw new Error(`joining ${config.joinUrl} failed: ${error.message}`, { cause: error });
        agent.logger.warn({ err: error }, 'the registry cannot be reached yet: joining again shortly');
      }
    agent.loops = [agent.pollLoop(), agent.tickLoop(), agent.logLoop()];
    return agent;
  }

  /** Stops talking to the registry; the containers keep running (a restarted agent adopts them). */
  async stop(): Promise<void> {
    this.stopping.abort();
    this.wakeUp?.();
    await Promise.all(this.loops);
    this.converger.stop();
  }

  private async join(): Promise<void> {
    const credential = await this.client.join(this.config.token, this.identity);
    await this.credentialFile.save(this.config.joinUrl, this.identity.name, credential);
    this.joined = true;
    this.logger.info(
      { registry: this.config.joinUrl, address: this.identity.address, labels: this.identity.labels },
      'joined the registry',
    );
  }

  private async pollLoop(): Promise<void> {
    while (!this.stopping.signal.aborted) {
      try {
        if (!this.joined) await this.join();
        const answer = await this.client.assignments(this.version, POLL_WAIT_SECONDS, this.stopping.signal);
        if (answer.version !== this.version) {
          this.version = answer.version;
          this.pulls.assignmentsChanged(answer.version);
          this.assignments = answer.assignments;
          this.wakeUp?.();
        }
      } catch (error) {
        await this.failed(error, 'polling the assignments failed');
      }
    }
  }

  /** Answers `berth service logs`: each request the registry has for this node, streamed back while the loop goes on. */
  private async logLoop(): Promise<void> {
    while (!this.stopping.signal.aborted) {
      try {
        if (!this.joined) {
          await sleep(RETRY_MS, undefined, { ref: false });
          continue;
        }
        for (const request of await this.client.logRequests(POLL_WAIT_SECONDS, this.stopping.signal)) this.sendLogs(request);
      } catch (error) {
        await this.failed(error, 'polling the log requests failed');
      }
    }
  }

  private sendLogs(request: LogRequest): void {
    const done = new AbortController();
    const stop = () => done.abort();
    this.stopping.signal.addEventListener('abort', stop, { once: true });
    this.client
      .sendLogs(request.id, this.converger.logs(request, done.signal), done)
      .catch((error: Error) => {
        // Also how a followed request ends: the registry answers (its reader went away) while lines still go.
        if (!this.stopping.signal.aborted) this.logger.info({ request: request.id, reason: error.message }, 'a log request ended early');
      })
      .finally(() => this.stopping.signal.removeEventListener('abort', stop));
  }

  private async tickLoop(): Promise<void> {
    while (!this.stopping.signal.aborted) {
      try {
        if (this.assignments !== undefined) this.converger.converge(this.assignments);
        if (this.joined) await this.report();
      } catch (error) {
        await this.failed(error, 'reporting to the registry failed');
      }
      await new Promise<void>((resolve) => {
        this.wakeUp = resolve;
        sleep(TICK_MS, undefined, { ref: false }).then(resolve, resolve);
      });
    }
  }

  /**
   * A report naming a replica the registry took away since the last poll is refused whole: the heartbeat
   * is then sent alone, so that a node whose assignments just changed is not taken for dead.
   */
  private async report(): Promise<void> {
    try {
      if (this.assignments === undefined) await this.client.heartbeat(this.stopping.signal);
      else await this.client.report(this.converger.reports(this.assignments), this.stopping.signal);
    } catch (error) {
      if (!(error instanceof NodeRequestRefusedError)) throw error;
      this.logger.info({ reason: error.message }, 'report refused: the assignments changed meanwhile');
      await this.client.heartbeat(this.stopping.signal);
    }
  }

  private async failed(error: unknown, what: string): Promise<void> {
    if (this.stopping.signal.aborted) return;
    if (error instanceof NodeRejectedError) {
      this.joined = false;
      this.version = 0;
    }
    this.logger.warn({ err: error }, what);
    await sleep(RETRY_MS, undefined, { ref: false });
  }
}

/** Name, labels, capacity and the address its published ports answer on (the one that reaches the registry). */
async function nodeIdentity(config: NodeConfig): Promise<NodeIdentity> {
  const name =
    config.name ??
    hostname()
      .toLowerCase()
      .replace(/[^a-z0-9.-]/g, '-')
      .slice(0, 63);
  const address = config.advertiseAddress ?? (await routeSource(new URL(config.joinUrl).hostname));
  return { name, labels: config.labels, address, capacity: { cpus: availableParallelism(), memoryBytes: totalmem() } };
}

async function routeSource(host: string): Promise<string> {
  const { address } = await lookup(host.replace(/^\[|\]$/g, ''), { family: 4 });
  const routes = JSON.parse(await runHostCommand('ip', ['-j', 'route', 'get', address])) as Array<{ prefsrc?: string }>;
  const source = routes[0]?.prefsrc;
  if (source === undefined) throw new Error(`no local address routes to ${address}: set --advertise-address`);
  return source;
}
