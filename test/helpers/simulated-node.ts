import { setTimeout as sleep } from 'node:timers/promises';

export interface SimulatedAssignment {
  replica: string;
  revision: number;
  image: string;
  slot: string;
  service: string;
}

export type Health = 'starting' | 'healthy' | 'unhealthy' | 'failed';

/**
 * A node as the registry's node API sees it, with no containers behind it: it joins, heartbeats, long-polls
 * its assignments and reports each replica with the health `healthOf` gives. The contract test of the node
 * API, until the agent's own node loop (runtime-agent/node/) replaces it.
 */
export class SimulatedNode {
  assignments: SimulatedAssignment[] = [];
  private running = false;
  private loop: Promise<void> | undefined;
  private version = 0;

  private constructor(
    readonly baseUrl: string,
    readonly name: string,
    readonly credential: string,
    public healthOf: (assignment: SimulatedAssignment) => Health,
  ) {}

  static async join(baseUrl: string, token: string, name: string, labels: Record<string, string> = {}): Promise<SimulatedNode> {
    const response = await fetch(`${baseUrl}/deploy/v1/join`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ token, name, labels, address: '127.0.0.1', capacity: { cpus: 2, memoryBytes: 1 << 30 } }),
    });
    if (response.status !== 200) throw new Error(`join of ${name} answered ${response.status}: ${await response.text()}`);
    const { credential } = (await response.json()) as { credential: string };
    return new SimulatedNode(baseUrl, name, credential, () => 'healthy');
  }

  start(): void {
    this.running = true;
    this.loop = this.run();
  }

  /** Stops heartbeating and reporting, as a killed agent would. */
  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }

  call(path: string, init: RequestInit = {}): Promise<Response> {
    return fetch(`${this.baseUrl}/deploy/v1/node/${path}`, {
      ...init,
      headers: { Authorization: `Bearer ${this.credential}`, 'Content-Type': 'application/json', ...init.headers },
    });
  }

  private async run(): Promise<void> {
    for (let round = 0; this.running && round < 100_000; round++) {
      try {
        const poll = await this.call(`assignments?version=${this.version}&wait=1`);
        if (poll.status === 200) {
          const body = (await poll.json()) as { version: number; assignments: SimulatedAssignment[] };
          this.version = body.version;
          this.assignments = body.assignments;
        }
        if (!this.running) return;
        const replicas = this.assignments.map((assignment) => ({
          replica: assignment.replica,
          revision: assignment.revision,
          health: this.healthOf(assignment),
        }));
        await this.call('reports', { method: 'PUT', body: JSON.stringify({ replicas }) }).then((response) => response.arrayBuffer());
      } catch {
        // A registry being restarted: try again shortly.
        await sleep(200);
      }
    }
  }
}
