import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import type { Writable } from 'node:stream';
import { CodedError } from '../../platform/errors.js';
import { AgentErrors } from '../errors.js';
import type { ExitRecord } from '../shim/shim-protocol.js';

/** A run of a container's process: its pid and how it ends. */
export interface RunningContainer {
  pid: number;
  shimPid: number;
  exited: Promise<ExitRecord>;
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

/** The seam to the OCI runtime: everything the container manager asks of runc. */
export interface ContainerRuntime {
  /** Starts the bundle's process; resolves once it runs, rejects with StartError when it cannot. */
  start(id: string, bundle: string, logDirectory: string, openStdin: boolean): Promise<RunningContainer>;
  /** Finds the run of a container whose shim outlived a daemon restart, or how it ended meanwhile. */
  reattach(bundle: string, shimPid: number): Promise<RunningContainer | ExitRecord>;
  kill(id: string, signal: string): Promise<void>;
  /** A connection to a running container's stdin (for `-i`); ending it closes the stdin. */
  openStdin(bundle: string, shimPid: number): Promise<Writable>;
  /** An extra process in the running container, its stdio piped. */
  exec(id: string, process: ExecProcess): ChildProcessWithoutNullStreams;
  /** Freezes every process of the container (cgroup freezer), and thaws them. */
  pause(id: string): Promise<void>;
  resume(id: string): Promise<void>;
  /** Forgets the container's runtime state (after its run is over, or after a crash). */
  delete(id: string): Promise<void>;
}
