import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import type { Duplex, Writable } from 'node:stream';
import type { TerminalSize } from '../container/attach/terminal-frames.js';
import { CodedError } from '../../platform/errors.js';
import { AgentErrors } from '../errors.js';
import type { ExitRecord } from '../shim/shim-protocol.js';
import type { PtyProcess } from './pty-process.js';

/** A run of a container's process: its pid and how it ends. */
export interface RunningContainer {
  pid: number;
  shimPid: number;
  exited: Promise<ExitRecord>;
  /** With `attachTerminal`: the connection to the terminal made before the process started (terminal-frames.ts). */
  terminal: Duplex | undefined;
}

/** The process could not be started; `exitCode` is docker's for `run` (125/126/127), also the answer's detail. */
export class StartError extends CodedError {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(AgentErrors.START_FAILED, message, { detail: { exitCode } });
  }
}

export interface ExecProcess {
  args: string[];
  /** Added to the container's environment. */
  env: string[];
  cwd: string | undefined;
  user: { uid: number; gid: number; additionalGids: number[] } | undefined;
}

export interface StartOptions {
  /** `-i`: the process's stdin stays open for a client to write. */
  openStdin: boolean;
  /** `-t`: the process runs on a pseudo-terminal clients attach to. */
  tty: boolean;
  /** With `tty`: the terminal's size until a client resizes it. */
  consoleSize: TerminalSize;
  /** With `tty`: connect to the terminal before the process starts, so nothing it prints or its exit is missed. */
  attachTerminal: boolean;
  /** The container has a memory limit: find out whether the OOM killer acted in it (ExitRecord.oomKilled). */
  watchOutOfMemory: boolean;
  /**
   * The container is removed when its run ends (`--rm`): its log and exit record need not survive a host
   * crash (the agent removes such a container when it comes back), so the shim writes them without fsync.
   */
  removedAfterRun: boolean;
}

/** The seam to the OCI runtime: everything the container manager asks of runc. */
export interface ContainerRuntime {
  /** Starts the bundle's process; resolves once it runs, rejects with StartError when it cannot. */
  start(id: string, bundle: string, logDirectory: string, options: StartOptions): Promise<RunningContainer>;
  /** Finds the run of a container whose shim outlived a daemon restart, or how it ended meanwhile. */
  reattach(bundle: string, shimPid: number): Promise<RunningContainer | ExitRecord>;
  kill(id: string, signal: string): Promise<void>;
  /** A connection to a running container's stdin (for `-i`); ending it closes the stdin. */
  openStdin(bundle: string, shimPid: number): Promise<Writable>;
  /** A connection to a `-t` container's terminal, speaking terminal-frames.ts; each connection is one client. */
  openTerminal(bundle: string, shimPid: number): Promise<Duplex>;
  /** An extra process in the running container, its stdio piped. */
  exec(id: string, process: ExecProcess): ChildProcessWithoutNullStreams;
  /** An extra process in the running container on a terminal of its own (`exec -t`). */
  execOnTerminal(id: string, process: ExecProcess, size: TerminalSize): Promise<PtyProcess>;
  /** Freezes every process of the container (cgroup freezer), and thaws them. */
  pause(id: string): Promise<void>;
  resume(id: string): Promise<void>;
  /** Forgets the container's runtime state (after its run is over, or after a crash). */
  delete(id: string): Promise<void>;
}
