import { spawn, type ChildProcess, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { readFile, readlink, stat } from 'node:fs/promises';
import { getPriority, setPriority } from 'node:os';
import { connect } from 'node:net';
import path from 'node:path';
import type { Duplex, Writable } from 'node:stream';
import type { TerminalSize } from '../container/attach/terminal-frames.js';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { runHostCommand } from '../support/host-command.js';
import { readJsonIfExists } from '../support/json-file.js';
import { BundleFile, type ExitRecord, type ShimArguments, type ShimMessage, type ShimStartReport } from '../shim/shim-protocol.js';
import { StartError, type ContainerRuntime, type ExecProcess, type RunningContainer, type StartOptions } from './container-runtime.js';
import { spawnInPty, type PtyProcess } from './pty-process.js';

const SHIM = fileURLToPath(new URL('../shim/shim.js', import.meta.url));
/** How often a re-attached run's shim is looked for; a spawned shim reports its exit at once. */
const REATTACHED_POLL_MS = 500;
/** The spare shim's niceness until it is taken: the lowest priority. */
const SPARE_NICENESS = 19;
/**
 * How long after a start the next start's shim is spawned when no shim is idle by then: a short run's own
 * shim comes back first and is reused, so sequential short runs spawn none.
 */
const SPARE_DELAY_MS = 1000;

export interface RuncOptions {
  /** The runtime binary (runc or a compatible one). */
  binary: string;
  /** runc's state directory (`--root`). */
  root: string;
  logMaxSizeBytes: number;
  logMaxFiles: number;
}

/** A shim process, with the JSON lines of its stdout (read across its runs) and its exit. */
interface Shim {
  process: ChildProcess;
  messages: AsyncGenerator<ShimMessage>;
  gone: Promise<void>;
}

/** Runs containers with runc, each run owned by a detached shim process (runtime-agent/shim). */
export class RuncRuntime implements ContainerRuntime {
  /** An idle shim waiting for a start's arguments: the one of an ended run, or one spawned ahead. */
  private spare: Shim | undefined;
  private spareTimer: NodeJS.Timeout | undefined;

  constructor(private readonly options: RuncOptions) {}

  async start(id: string, bundle: string, logDirectory: string, options: StartOptions): Promise<RunningContainer> {
    const args: ShimArguments = {
      bundle,
      containerId: id,
      runtime: this.options.binary,
      runtimeRoot: this.options.root,
      logDirectory,
      logMaxSizeBytes: this.options.logMaxSizeBytes,
      logMaxFiles: this.options.logMaxFiles,
      openStdin: options.openStdin,
      tty: options.tty,
      consoleSize: options.consoleSize,
      attachBeforeStart: options.tty && options.attachTerminal,
      watchOutOfMemory: options.watchOutOfMemory,
      removedAfterRun: options.removedAfterRun,
    };
    const shim = this.takeShim();
    shim.process.stdin?.write(`${JSON.stringify(args)}\n`);
    const { report, terminal } = await awaitStart(shim, bundle).finally(() => this.scheduleSpare());
    // Also after a failed start: the shim reports that run's end too, and is then idle.
    const exited = awaitExit(shim, bundle).then((exit) => {
      this.idle(shim);
      return exit;
    });
    if (!report?.started) terminal?.destroy();
    if (!report)
      throw new StartError(`the container shim exited without starting the container (see ${path.join(bundle, BundleFile.shimLog)})`, 125);
    if (!report.started) throw new StartError(report.message, report.exitCode);
    return { pid: report.pid, shimPid: shim.process.pid ?? 0, exited, terminal };
  }

  async reattach(bundle: string, shimPid: number): Promise<RunningContainer | ExitRecord> {
    if (!(await isShimOf(shimPid, bundle))) return readExit(bundle);
    const pid = Number((await readFile(path.join(bundle, BundleFile.pid), 'utf8')).trim());
    const exited = new Promise<ExitRecord>((resolve) => {
      const timer = setInterval(() => {
        void isShimOf(shimPid, bundle).then((alive) => {
          if (alive) return;
          clearInterval(timer);
          resolve(readExit(bundle));
        });
      }, REATTACHED_POLL_MS);
    });
    return { pid, shimPid, exited, terminal: undefined };
  }

  /**
   * The idle shim, or a new one. A spare spawned ahead is brought back to the daemon's priority before it has
   * its arguments, so runc and the container inherit that.
   */
  private takeShim(): Shim {
    const spare = this.spare;
    this.spare = undefined;
    if (spare === undefined || !isAlive(spare) || !restorePriority(spare.process.pid!)) return spawnShim();
    return spare;
  }

  /**
   * A shim whose run has ended becomes the spare: the next start needs no Node start-up. It replaces a spare
   * spawned meanwhile, which may still be starting, and which is retired (its stdin ends).
   */
  private idle(shim: Shim): void {
    if (!isAlive(shim)) return;
    const previous = this.spare;
    this.spare = shim;
    previous?.process.stdin?.end();
  }

  /**
   * The next start's shim, when none is idle a while after this start: the start then does not wait for a
   * fork of the daemon. It waits at the lowest priority (nice 19), so its Node start-up takes only CPU time
   * the runs' own processes leave. Lowered as soon as it is spawned (spawn returns once the child has exec'd
   * node, before node starts its threads).
   */
  private scheduleSpare(): void {
    if (this.spare || this.spareTimer) return;
    this.spareTimer = setTimeout(() => {
      this.spareTimer = undefined;
      if (this.spare) return;
      const spare = spawnShim();
      this.spare = spare;
      try {
        if (spare.process.pid !== undefined) setPriority(spare.process.pid, SPARE_NICENESS);
      } catch {
        // Gone already: the next start spawns a shim of its own.
      }
    }, SPARE_DELAY_MS);
    this.spareTimer.unref();
  }

  openStdin(bundle: string, shimPid: number): Promise<Writable> {
    return connectToShim(bundle, shimPid, BundleFile.stdinSocket, "the container's stdin");
  }

  openTerminal(bundle: string, shimPid: number): Promise<Duplex> {
    return connectToShim(bundle, shimPid, BundleFile.terminalSocket, "the container's terminal");
  }

  async kill(id: string, signal: string): Promise<void> {
    await this.runc(['kill', id, signal.replace(/^SIG/, '')]);
  }

  exec(id: string, process: ExecProcess): ChildProcessWithoutNullStreams {
    return spawn(this.options.binary, this.execArgs(id, process, []), { stdio: ['pipe', 'pipe', 'pipe'] });
  }

  /** `runc exec --tty` on a terminal held by the daemon: runc relays the new process's terminal to it, as for a run. */
  execOnTerminal(id: string, process: ExecProcess, size: TerminalSize): Promise<PtyProcess> {
    return spawnInPty(this.options.binary, this.execArgs(id, process, ['--tty']), { cwd: '/', size });
  }

  private execArgs(id: string, process: ExecProcess, flags: string[]): string[] {
    const args = ['--root', this.options.root, 'exec', ...flags];
    for (const variable of process.env) args.push('--env', variable);
    if (process.cwd) args.push('--cwd', process.cwd);
    if (process.user) {
      args.push('--user', `${process.user.uid}:${process.user.gid}`);
      for (const gid of process.user.additionalGids) args.push('--additional-gids', String(gid));
    }
    return [...args, id, ...process.args];
  }

  async pause(id: string): Promise<void> {
    await this.runc(['pause', id]);
  }

  async resume(id: string): Promise<void> {
    await this.runc(['resume', id]);
  }

  async delete(id: string): Promise<void> {
    // `runc run` removes its state as it ends: most runs leave nothing, and runc need not be started to say so.
    if (
      !(await stat(path.join(this.options.root, id)).then(
        () => true,
        () => false,
      ))
    )
      return;
    await this.runc(['delete', '--force', id]).catch((error: Error) => {
      if (!/does not exist|not exist/.test(error.message)) throw error;
    });
  }

  private async runc(args: string[]): Promise<void> {
    await runHostCommand(this.options.binary, ['--root', this.options.root, ...args]);
  }
}

/** Through the shim's working directory: the socket's full path can be longer than a socket address may be. */
function connectToShim(bundle: string, shimPid: number, name: string, what: string): Promise<Duplex> {
  const socket = connect(`/proc/${shimPid}/cwd/${name}`);
  return new Promise((resolve, reject) => {
    socket.once('connect', () => resolve(socket));
    socket.once('error', (error) => reject(new Error(`${what} cannot be reached (${bundle}): ${error.message}`)));
  });
}

/** A shim waiting for its arguments on stdin; detached, so it outlives the daemon once it has them. */
function spawnShim(): Shim {
  const child = spawn(process.execPath, [SHIM], { detached: true, stdio: ['pipe', 'pipe', 'ignore'] });
  child.unref();
  // A shim that died before its arguments were written: the start learns it from the shim's ended stdout.
  child.stdin?.on('error', () => undefined);
  const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return { process: child, messages: shimMessages(child), gone };
}

function isAlive({ process: child }: Shim): boolean {
  return child.pid !== undefined && child.exitCode === null && child.signalCode === null;
}

/**
 * Brings every thread of process `pid` back to the daemon's priority (Linux keeps a nice value per thread).
 * The main thread goes first: a thread it starts after that inherits the restored value, one it started
 * before is in the list. False when that cannot be done (the process is gone): the shim is not used.
 */
function restorePriority(pid: number): boolean {
  const niceness = getPriority();
  let threads: number[];
  try {
    setPriority(pid, niceness);
    threads = readdirSync(`/proc/${pid}/task`).map(Number);
  } catch {
    return false;
  }
  for (const thread of threads.filter((tid) => tid !== pid)) {
    try {
      setPriority(thread, niceness);
    } catch {
      // A thread that ended meanwhile.
    }
  }
  return true;
}

/** The JSON lines of the shim's stdout, read one at a time: the start first, the exit later. */
async function* shimMessages(shim: ChildProcess): AsyncGenerator<ShimMessage> {
  if (!shim.stdout) return;
  for await (const line of createInterface({ input: shim.stdout, crlfDelay: Infinity })) {
    if (line.trim()) yield JSON.parse(line) as ShimMessage;
  }
}

/**
 * Reads the shim's stdout up to its start report; when it says the terminal listens first, connects to it
 * there and then (the process waits for that connection before it starts).
 */
async function awaitStart(
  { process: shim, messages }: Shim,
  bundle: string,
): Promise<{ report: ShimStartReport | undefined; terminal: Duplex | undefined }> {
  let terminal: Duplex | undefined;
  if (shim.pid === undefined) return { report: undefined, terminal };
  // next() and never a for-await: leaving one would close the lines that the shim's later runs write.
  for (let next = await messages.next(); !next.done; next = await messages.next()) {
    const message = next.value;
    if ('exited' in message) break;
    if (!('terminalListening' in message)) return { report: message, terminal };
    terminal = await connectToShim(bundle, shim.pid, BundleFile.terminalSocket, "the container's terminal").catch((error: Error) => {
      // Nothing has started yet: the shim goes, so no process runs that the daemon does not know of.
      shim.kill('SIGKILL');
      throw new StartError(error.message, 125);
    });
  }
  return { report: undefined, terminal };
}

/**
 * The run's exit as the shim reports it once recorded, without waiting for the shim's own exit; from
 * exit.json when the shim ended without the report (it failed).
 */
async function awaitExit({ messages, gone }: Shim, bundle: string): Promise<ExitRecord> {
  try {
    for (let next = await messages.next(); !next.done; next = await messages.next()) if ('exited' in next.value) return next.value.exited;
  } catch {
    // A line that is not JSON: the shim is broken, and its exit.json tells.
  }
  await gone;
  return readExit(bundle);
}

/** The run's exit as its shim recorded it; a shim that died without a record counts as exit 255. */
async function readExit(bundle: string): Promise<ExitRecord> {
  const record = await readJsonIfExists<ExitRecord>(path.join(bundle, BundleFile.exit)).catch(() => undefined);
  return record ?? { exitCode: 255, finishedAt: new Date().toISOString(), startError: 'the container shim died' };
}

/** Whether `pid` is still the shim of this bundle (and not a reused pid): a shim works in its bundle directory. */
async function isShimOf(pid: number, bundle: string): Promise<boolean> {
  const [commandLine, workingDirectory] = await Promise.all([
    readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => ''),
    readlink(`/proc/${pid}/cwd`).catch(() => ''),
  ]);
  return commandLine.includes(SHIM) && workingDirectory === bundle;
}
