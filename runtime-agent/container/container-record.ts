import type { ImageRuntimeConfig } from '../../oci/manifest.js';
import type { NetworkAttachment } from '../network/container-network.js';
import type { ContainerSpec } from './container-spec.js';
import type { HealthConfig } from './health/health-config.js';
import type { HealthState } from './health/health-state.js';

/** Docker's container states, as `ps` and `inspect` show them. */
export type ContainerStatus = 'created' | 'running' | 'restarting' | 'exited';

export interface ContainerState {
  status: ContainerStatus;
  /** The container's init process on the host while it runs. */
  pid: number | undefined;
  /** The shim that owns this run; how a restarted daemon finds the run again. */
  shimPid: number | undefined;
  startedAt: string | undefined;
  finishedAt: string | undefined;
  exitCode: number | undefined;
  /** Why the last start failed, as the runtime said it. */
  error: string | undefined;
  /** The OOM killer acted during the last run (docker's State.OOMKilled); older records lack it, meaning false. */
  oomKilled: boolean | undefined;
  restartCount: number;
  /** The delay before the last restart, which the next one doubles (restart-backoff.ts). */
  lastRestartDelayMs: number | undefined;
  /** Set by `stop`/`kill` from a user: a policy other than `always` then leaves it down. */
  stoppedByUser: boolean;
  /** The health check's state once it has run (State.Health); older records lack it. */
  health: HealthState | undefined;
  /** Frozen by `pause` (cgroup freezer); records written before `pause` existed lack it, meaning false. */
  paused: boolean | undefined;
}

/** Everything the agent keeps about one container (`containers/<id>/container.json`). */
export interface ContainerRecord {
  id: string;
  name: string;
  spec: ContainerSpec;
  /** The image record's key the reference resolved to, and the image id (config digest) at creation. */
  imageReference: string;
  imageId: string;
  /** Chain ids of the image's layers, bottom first: the overlay's lowerdirs. */
  layers: string[];
  /** The image's runtime config as it was at creation: the container does not change when the image does. */
  imageConfig: ImageRuntimeConfig;
  /** The signal `stop` sends first: --stop-signal, else the image's StopSignal, else SIGTERM. */
  stopSignal: string;
  /** The resolved process, for `ps` and `inspect`. */
  path: string;
  args: string[];
  autoRemove: boolean;
  createdAt: string;
  state: ContainerState;
  network: NetworkAttachment | undefined;
  /** The image's HEALTHCHECK merged with the flags at creation; older records lack it (no check). */
  healthcheck: HealthConfig | undefined;
}
