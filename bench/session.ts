import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import type { RegistryClient } from './registry-client.js';
import type { ServerProcess } from './servers.js';

/**
 * A benchmark's temp directory, servers and clients, cleaned up exactly once: at the end, on Ctrl-C or
 * SIGTERM, and on an uncaught exception (e.g. EPIPE when the table is piped into `head`).
 */
export interface BenchSession {
  workDir: string;
  servers: ServerProcess[];
  clients: RegistryClient[];
  /** Undoes anything else the benchmark started (daemons, state outside workDir), last added first, before the servers stop. */
  teardowns: Array<() => Promise<void>>;
  cleanup(): Promise<void>;
}

export async function startBenchSession(prefix: string): Promise<BenchSession> {
  const workDir = await mkdtemp(path.join(tmpdir(), prefix));
  const servers: ServerProcess[] = [];
  const clients: RegistryClient[] = [];
  const teardowns: BenchSession['teardowns'] = [];
  let cleaning: Promise<void> | undefined;
  const cleanup = () =>
    (cleaning ??= (async () => {
      for (const client of clients) client.close();
      for (const teardown of [...teardowns].reverse()) {
        await teardown().catch((error: unknown) =>
          process.stderr.write(`cleanup failed: ${error instanceof Error ? error.message : String(error)}\n`),
        );
      }
      await Promise.all(servers.map((server) => server.stop()));
      await rm(workDir, { recursive: true, force: true });
    })());
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => void cleanup().finally(() => process.exit(130)));
  }
  process.on('uncaughtException', () => void cleanup().finally(() => process.exit(1)));
  return { workDir, servers, clients, teardowns, cleanup };
}

const loadAverage = () =>
  loadavg()
    .map((value) => value.toFixed(2))
    .join(' ');

/**
 * Runs a benchmark that produces its result table, printing the machine's load before and after (other work
 * skews every figure), or the error and both servers' last log lines; always cleans up.
 */
export async function reportBench(
  name: string,
  session: BenchSession,
  options: unknown,
  produceTable: () => Promise<string>,
): Promise<void> {
  process.stderr.write(`${name}: ${availableParallelism()} CPUs, load average ${loadAverage()}, options ${JSON.stringify(options)}\n`);
  try {
    const table = await produceTable();
    process.stdout.write(`\n${table}\n`);
    process.stdout.write(`(load average at the end: ${loadAverage()}; other work on this machine skews every figure)\n`);
  } catch (error) {
    process.stderr.write(`\nbenchmark failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    for (const server of session.servers) process.stderr.write(`\n--- last lines of the ${server.name} log ---\n${server.logTail()}\n`);
    process.exitCode = 1;
  } finally {
    await session.cleanup();
  }
}
