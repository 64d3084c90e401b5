import type { TerminalSize } from '../container/attach/terminal-frames.js';

/**
 * What passes between the daemon and a container's shim. The shim is a small process per container run that
 * outlives the daemon: it owns `runc run` (the container's parent, which reports its exit status), writes
 * the container's output to its log files and records the exit in `exit.json`.
 */

export interface ShimArguments {
  /** The OCI bundle: config.json is here; so are runc.pid, runc.log and exit.json. */
  bundle: string;
  containerId: string;
  runtime: string;
  runtimeRoot: string;
  logDirectory: string;
  logMaxSizeBytes: number;
  logMaxFiles: number;
  /** Give the process a stdin pipe, fed by the first client of `attach.sock` in the bundle. */
  openStdin: boolean;
  /** Run the process on a terminal (`-t`), served to the clients of `terminal.sock` in the bundle. */
  tty: boolean;
  /** The terminal's size until a client resizes it. */
  consoleSize: TerminalSize;
  /**
   * With `tty`: the process starts only once a first client (the daemon, for `run -t` or `start -a`) has
   * connected to `terminal.sock`, so that client sees all of its output and its exit code however quickly it
   * ends. The shim says when the socket listens with a `TerminalListening` line on stdout.
   */
  attachBeforeStart: boolean;
  /** The container has a memory limit: watch for the kernel's OOM kills in it (oom-watch.ts). */
  watchOutOfMemory: boolean;
  /** Removed when the run ends: the log and exit.json are written without fsync (StartOptions.removedAfterRun). */
  removedAfterRun: boolean;
}

/** Written on stdout ahead of the start report when `attachBeforeStart` is set: terminal.sock takes its first client. */
export interface TerminalListening {
  terminalListening: true;
}

/** The line the shim writes on its stdout once the container has started or failed to. */
export type ShimStartReport = { started: true; pid: number } | { started: false; message: string; exitCode: number };

/**
 * The last line on the shim's stdout, once `exit.json` is on disk: the daemon takes the exit from it rather
 * than waiting for the shim's own exit (a Node process's teardown, on the path of every `run`'s exit).
 */
export interface ShimExitReport {
  exited: ExitRecord;
}

/** A line of the shim's stdout: for each run, the terminal's socket (with `attachBeforeStart`), the start, the exit. */
export type ShimMessage = TerminalListening | ShimStartReport | ShimExitReport;

/** `exit.json`: how the run ended. Written fsynced before the shim reports it and exits. */
export interface ExitRecord {
  exitCode: number;
  finishedAt: string;
  /** Set when the runtime could not start the process (docker's 126/127 cases). */
  startError?: string;
  /** The OOM killer acted in the container while it ran (docker's State.OOMKilled); older shims leave it out. */
  oomKilled?: boolean;
}

export const BundleFile = {
  pid: 'runc.pid',
  runtimeLog: 'runc.log',
  exit: 'exit.json',
  shimLog: 'shim.log',
  /** Where the daemon connects to write the container's stdin; reached as /proc/<shim pid>/cwd/attach.sock. */
  stdinSocket: 'attach.sock',
  /** Where clients attach to a `-t` container's terminal (terminal-frames.ts), reached the same way. */
  terminalSocket: 'terminal.sock',
} as const;
