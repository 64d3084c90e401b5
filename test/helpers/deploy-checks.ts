import type { DeployCluster, Json } from './deploy-cluster.js';

/** A replica as `service ps` and the admin API show it. */
export interface ReplicaView {
  slot: string;
  node: string;
  revision: number;
  health: string;
}

const SETTLE_MS = 90_000;
const POLL_MS = 200;

export const replicas = (service: Json): ReplicaView[] => service.replicas as ReplicaView[];

/** `<status> <body>` of a request to a published port, as a client sees it. */
export async function servedBy(address: string, port: number): Promise<string> {
  const response = await fetch(`http://${address}:${port}/`, { signal: AbortSignal.timeout(3000) });
  return `${response.status} ${(await response.text()).trim()}`;
}

/** Requests to each address in turn, as fast as they are answered, until stopped: what a client saw. */
export function clientLoop(addresses: string[], port = 8080): { stop(): Promise<{ ok: number; failures: string[]; bodies: Set<string> }> } {
  const result = { ok: 0, failures: [] as string[], bodies: new Set<string>() };
  let running = true;
  const loop = (async () => {
    for (let round = 0; running && round < 100_000; round++) {
      const address = addresses[round % addresses.length]!;
      try {
        const [status, body] = (await servedBy(address, port)).split(' ');
        if (status === '200') {
          result.ok++;
          result.bodies.add(body!);
        } else result.failures.push(`${address}: ${status}`);
      } catch (error) {
        result.failures.push(`${address}: ${(error as Error).message}`);
      }
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return result;
    },
  };
}

/**
 * Samples `<stack>/<service>` through the admin API until `done`, keeping every sample: what the rollout
 * looked like as it went. A sample the registry could not answer (it is being restarted) is skipped.
 */
export async function watchService(
  cluster: DeployCluster,
  id: string,
  done: (service: Json) => boolean,
): Promise<Array<{ at: number; service: Json }>> {
  const [stack, service] = id.split('/');
  const samples: Array<{ at: number; service: Json }> = [];
  const deadline = Date.now() + SETTLE_MS;
  while (Date.now() < deadline) {
    const answer = await cluster.admin('GET', `stacks/${stack}/services/${service}`).catch(() => undefined);
    if (answer?.status === 200) {
      samples.push({ at: Date.now(), service: answer.body });
      if (done(answer.body)) return samples;
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  throw new Error(`not done within ${SETTLE_MS} ms; last: ${JSON.stringify(samples.at(-1)?.service)}`);
}
