import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { listeningPort } from '../platform/process.js';
import { freePort } from '../test/helpers/free-port.js';
import { descendantPids } from './process-stats.js';
import { REGISTRY_NODE_FLAGS } from '../server/node-flags.js';

const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 15_000;
const BERTH_CLI = fileURLToPath(new URL('../server/cli.js', import.meta.url));

/** A registry child process whose output goes to a log file (so its logging never back-pressures on us). */
export class ServerProcess {
  private helpers: number[] = [];
  private readonly exited: Promise<void>;

  private constructor(
    readonly name: string,
    private readonly child: ChildProcess,
    readonly logFile: string,
    public url = '',
  ) {
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
  }

  get pid(): number {
    return this.child.pid ?? 0;
  }

  /** Spawns `command`, then polls until `ready` yields the base URL (or the process dies / times out). */
  static async launch(
    name: string,
    command: string,
    args: string[],
    logFile: string,
    ready: (log: string) => Promise<string | undefined>,
    env: Record<string, string> = {},
  ): Promise<ServerProcess> {
    const fd = openSync(logFile, 'a');
    // --pdeathsig: the kernel sends SIGTERM to the server if this process dies without cleaning up.
    const child = spawn('setpriv', ['--pdeathsig', 'TERM', '--', command, ...args], {
      stdio: ['ignore', fd, fd],
      env: { ...process.env, ...env },
    });
    closeSync(fd);
    const server = new ServerProcess(name, child, logFile);
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (child.exitCode !== null || child.signalCode !== null) break;
      const url = await ready(readFileSync(logFile, 'utf8'));
      if (url) {
        server.url = url;
        server.helpers = descendantPids(server.pid);
        return server;
      }
      await sleep(100);
    }
    await server.stop();
    throw new Error(`${name} did not start (exit ${child.exitCode ?? child.signalCode ?? 'none'}):\n${server.logTail()}`);
  }

  logTail(lines = 20): string {
    try {
      return readFileSync(this.logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }

  /** SIGTERM, SIGKILL after a grace period; then ends helper processes it left behind (by pid). */
  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGTERM');
      const timedOut = await Promise.race([this.exited.then(() => false), sleep(STOP_TIMEOUT_MS).then(() => true)]);
      if (timedOut) {
        this.child.kill('SIGKILL');
        await this.exited;
      }
    }
    for (const pid of this.helpers) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
}

export interface ServerOptions {
  /** Shown in progress lines and the report; also names the data directory, log and config (default Berth / Distribution). */
  name?: string;
  /** Extra environment of the server process (Berth: BERTH_* configuration). */
  env?: Record<string, string>;
}

/** Lower-case file name for a server name ("Berth proxy" -> "berth-proxy"). */
function slug(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9]+/g, '-');
}

// As the registry image sets it (Dockerfile): glibc keeps up to 32 MiB of freed heap instead of trimming it.
const IMAGE_MALLOC_TUNABLES = 'glibc.malloc.trim_threshold=33554432';

/**
 * `berth serve` on a free port with its own data directory (and embedded Redis), with the image's Node flags and
 * malloc tunables unless `options.env` sets GLIBC_TUNABLES (empty: glibc's defaults).
 */
export function startBerth(workDir: string, options: ServerOptions = {}): Promise<ServerProcess> {
  const name = options.name ?? 'Berth';
  const dataDir = path.join(workDir, slug(name));
  const args = [...REGISTRY_NODE_FLAGS, BERTH_CLI, 'serve', '--host', '127.0.0.1', '--port', '0', '--data-dir', dataDir];
  return ServerProcess.launch(
    name,
    process.execPath,
    args,
    path.join(workDir, `${slug(name)}.log`),
    async (log) => {
      const port = listeningPort(log, 'berth registry listening');
      return port === undefined ? undefined : `http://127.0.0.1:${port}`;
    },
    { GLIBC_TUNABLES: IMAGE_MALLOC_TUNABLES, ...options.env },
  );
}

/**
 * Debian's docker-registry (CNCF Distribution) with deletes enabled; on filesystem storage in the work directory
 * unless `storage` gives the YAML lines of another driver (indented under `storage:`).
 */
export async function startDistribution(workDir: string, options: ServerOptions & { storage?: string[] } = {}): Promise<ServerProcess> {
  const name = options.name ?? 'Distribution';
  const root = path.join(workDir, slug(name));
  mkdirSync(root, { recursive: true });
  const port = await freePort();
  const config = path.join(workDir, `${slug(name)}.yml`);
  writeFileSync(
    config,
    [
      'version: 0.1',
      'storage:',
      ...(options.storage ?? [`  filesystem: {rootdirectory: ${root}}`]),
      '  delete: {enabled: true}',
      '  cache: {blobdescriptor: inmemory}',
      `http: {addr: 127.0.0.1:${port}}`,
      '',
    ].join('\n'),
  );
  const url = `http://127.0.0.1:${port}`;
  return ServerProcess.launch(
    name,
    'docker-registry',
    ['serve', config],
    path.join(workDir, `${slug(name)}.log`),
    async () => ((await answers(`${url}/v2/`)) ? url : undefined),
    options.env,
  );
}

function answers(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    http
      .get(url, (res) => {
        res.resume();
        resolve(res.statusCode === 200);
      })
      .once('error', () => resolve(false));
  });
}
