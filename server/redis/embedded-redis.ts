import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readFile, statfs } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../../platform/logger.js';
import { redisAnswers, withOneShotClient } from './connect.js';

// sun_path is 108 bytes on Linux; leave room for the terminator.
const MAX_SOCKET_PATH = 100;
const READY_TIMEOUT_MS = 15_000;
const MAX_RESTART_DELAY_MS = 30_000;
// Redis's last words when it cannot append to its AOF under appendfsync always (a full disk, an I/O error).
const CANNOT_PERSIST = /Can't recover from AOF write error|Can't persist AOF for fsync error/;
const AOF_FAILURE = /(Error writing to|Short write while writing to|Can't persist AOF for fsync error)[^\n]*/;
// While read-only, the data directory's free space is checked this often; writes resume above the threshold.
const SPACE_CHECK_MS = 2_000;
const RESUME_FREE_BYTES = 16 << 20;
// What setpriv (util-linux) prints when it cannot run the binary it was given.
const SETPRIV_EXEC_FAILED = /^setpriv: failed to execute/;

export class RedisBinaryMissingError extends Error {
  override name = 'RedisBinaryMissingError';
}

/**
 * A redis-server child owned by the registry, with its data and append-only file under the data directory.
 * appendfsync is `always`: Redis fsyncs the AOF before it answers a write, so a manifest or tag the registry
 * acknowledged survives a power loss, not only a process crash. Metadata writes are small and Redis groups
 * the fsyncs of concurrent clients, so the cost is a disk flush per batch of writes, not per byte pushed.
 * If the child dies, it is restarted with backoff; clients reconnect by themselves.
 *
 * Under appendfsync always, Redis exits when it cannot append to its AOF (a full disk): the write it could
 * not persist was never acknowledged. It is then restarted at once in read-only mode (min-replicas-to-write 1
 * with no replica: reads are served, writes refused with NOREPLICAS), reported once, and given writes back
 * once its data directory has free space again, instead of dying at every write in a restart loop.
 */
export class EmbeddedRedis {
  readonly socketPath: string;
  private readonly directory: string;
  private child: ChildProcess | undefined;
  /** Settles once the child has exited and its output has been read to the end. */
  private childClosed: Promise<void> = Promise.resolve();
  private stopping = false;
  private restartDelayMs = 500;
  private recentOutput: string[] = [];
  private readOnlyReason: string | undefined;
  private spaceCheck: NodeJS.Timeout | undefined;

  constructor(
    dataDir: string,
    private readonly binary: string,
    private readonly logger: Logger,
  ) {
    this.directory = path.join(dataDir, 'redis');
    const preferred = path.join(this.directory, 'redis.sock');
    this.socketPath =
      preferred.length <= MAX_SOCKET_PATH
        ? preferred
        : path.join(tmpdir(), `berth-redis-${createHash('sha256').update(this.directory).digest('hex').slice(0, 16)}.sock`);
  }

  async start(): Promise<void> {
    await mkdir(this.directory, { recursive: true, mode: 0o700 });
    await this.stopLeftoverServer();
    await this.spawnServer();
    await this.waitUntilReady();
  }

  /** Why the embedded Redis refuses writes (it could not persist them), or undefined while it accepts them. */
  get writeProblem(): string | undefined {
    return this.readOnlyReason;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    clearInterval(this.spaceCheck);
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await Promise.race([exited, sleep(10_000)]);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }

  private get pidFile(): string {
    return path.join(this.directory, 'redis.pid');
  }

  private spawnServer(): Promise<void> {
    const args = [
      '--port',
      '0',
      '--unixsocket',
      this.socketPath,
      '--unixsocketperm',
      '700',
      '--dir',
      this.directory,
      '--pidfile',
      this.pidFile,
      '--daemonize',
      'no',
      '--appendonly',
      'yes',
      '--appendfsync',
      'always',
      '--save',
      '',
      '--logfile',
      '',
      '--min-replicas-to-write',
      this.readOnlyReason ? '1' : '0',
    ];
    this.recentOutput = [];
    return new Promise((resolve, reject) => {
      // Its own process group: a signal to the registry's group (Ctrl-C, `docker stop` through tini -g) must
      // not stop Redis before the registry has finished with it; the registry stops it last. setpriv gives it a
      // parent-death signal, so a registry killed outright (SIGKILL, the OOM killer) takes it along instead of
      // leaving it holding the append-only file; SIGTERM lets Redis finish its last fsync.
      const child = spawn('setpriv', ['--pdeathsig', 'TERM', '--', this.binary, ...args], {
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true,
      });
      this.child = child;
      this.childClosed = new Promise((resolveClosed) => child.once('close', () => resolveClosed()));
      child.once('error', reject);
      child.once('spawn', () => resolve());
      for (const stream of [child.stdout, child.stderr]) {
        stream?.setEncoding('utf8');
        stream?.on('data', (text: string) => this.remember(text));
      }
      child.once('exit', (code, signal) => this.onExit(code, signal));
    });
  }

  private remember(text: string): void {
    for (const line of text.split('\n')) {
      if (!line.trim()) continue;
      this.recentOutput.push(line);
      this.logger.debug({ redis: line }, 'embedded redis');
    }
    this.recentOutput = this.recentOutput.slice(-20);
  }

  private onExit(code: number | null, signal: NodeJS.Signals | null): void {
    if (this.stopping) return;
    let delay = 0;
    if (this.recentOutput.some((line) => CANNOT_PERSIST.test(line))) {
      this.refuseWrites();
    } else {
      this.logger.error({ code, signal, output: this.recentOutput.slice(-5) }, 'embedded redis exited; restarting');
      delay = this.restartDelayMs;
      this.restartDelayMs = Math.min(this.restartDelayMs * 2, MAX_RESTART_DELAY_MS);
    }
    setTimeout(() => {
      if (this.stopping) return;
      this.spawnServer()
        .then(() => this.waitUntilReady())
        .then(() => {
          this.restartDelayMs = 500;
          this.logger.info('embedded redis restarted');
        })
        .catch((error: unknown) => this.logger.error({ err: error }, 'embedded redis restart failed'));
    }, delay).unref();
  }

  private refuseWrites(): void {
    const failure = this.recentOutput.map((line) => AOF_FAILURE.exec(line)?.[0]).find((match) => match !== undefined) ?? 'AOF write failed';
    // Once per episode: a read-only Redis can still fail an internal write (a key expiring) and exit again.
    if (!this.readOnlyReason) {
      this.logger.error(
        { directory: this.directory, redis: failure },
        'embedded redis cannot persist writes (is the data directory full?): it serves reads only until space is freed',
      );
    }
    this.readOnlyReason = `embedded redis cannot write its append-only file under ${this.directory} (${failure}): writes are refused until space is freed, reads still work`;
    clearInterval(this.spaceCheck);
    this.spaceCheck = setInterval(() => {
      this.resumeWritesIfSpace().catch((error: unknown) => this.logger.debug({ err: error }, 'embedded redis still read-only'));
    }, SPACE_CHECK_MS).unref();
  }

  private async resumeWritesIfSpace(): Promise<void> {
    const space = await statfs(this.directory);
    if (space.bavail * space.bsize < RESUME_FREE_BYTES) return;
    await withOneShotClient({ path: this.socketPath }, (redis) => redis.config('SET', 'min-replicas-to-write', '0'));
    clearInterval(this.spaceCheck);
    this.readOnlyReason = undefined;
    this.logger.info({ directory: this.directory, freeBytes: space.bavail * space.bsize }, 'embedded redis accepts writes again');
  }

  private async waitUntilReady(): Promise<void> {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (this.child?.exitCode !== null || this.child?.signalCode !== null) {
        await this.childClosed;
        if (this.recentOutput.some((line) => SETPRIV_EXEC_FAILED.test(line))) {
          throw new RedisBinaryMissingError(
            `redis-server not found (looked for "${this.binary}"): install it with "apt-get install redis-server", or set redis.url (BERTH_REDIS__URL) to use an existing Redis`,
          );
        }
        throw new Error(`embedded redis-server exited during start: ${this.recentOutput.slice(-5).join(' | ')}`);
      }
      if (await redisAnswers({ path: this.socketPath })) return;
      await sleep(50);
    }
    throw new Error(
      `embedded redis-server did not become ready within ${READY_TIMEOUT_MS / 1000}s: ${this.recentOutput.slice(-5).join(' | ')}`,
    );
  }

  // A registry killed with SIGKILL leaves its redis-server running; it holds the AOF, so stop it first.
  private async stopLeftoverServer(): Promise<void> {
    const pid = Number((await readFile(this.pidFile, 'utf8').catch(() => '')).trim());
    if (!Number.isInteger(pid) || pid <= 0) return;
    const commandLine = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (!commandLine.includes('redis-server')) return;
    this.logger.warn({ pid }, 'stopping a redis-server left over from a previous run');
    process.kill(pid, 'SIGTERM');
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline && (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')) !== '') await sleep(50);
  }
}
