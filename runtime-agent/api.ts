import { z } from 'zod';
import type { ContainerStatus } from './container/container-record.js';
import type { PortMapping } from './container/container-spec.js';
import type { HealthConfig } from './container/health/health-config.js';
import type { HealthState, HealthStatus } from './container/health/health-state.js';
import type { LogEntry } from './container/logs/log-entry.js';

/** The daemon's HTTP/JSON API over its unix socket: paths and the documents exchanged, shared by daemon and CLI. */

export { ApiPath } from './api-paths.js';

/** `POST /v1/auth` (login): checked against the registry, then saved for its pulls. */
export const loginRequestSchema = z.object({
  /** `host[:port]` as in image references; docker.io when absent. */
  registry: z.string().optional(),
  username: z.string().min(1),
  password: z.string(),
});
export type LoginRequest = z.infer<typeof loginRequestSchema>;

export const pullRequestSchema = z.object({
  reference: z.string(),
  username: z.string().optional(),
  password: z.string().optional(),
});
export type PullRequest = z.infer<typeof pullRequestSchema>;

/** Docker's per-layer progress vocabulary, so the output reads like `docker pull` (and `docker push`). */
export type LayerAction =
  | 'Pulling fs layer'
  | 'Already exists'
  | 'Downloading'
  | 'Verifying Checksum'
  | 'Download complete'
  | 'Extracting'
  | 'Pull complete'
  | PushLayerAction;

export type PushLayerAction = 'Preparing' | 'Pushing' | 'Pushed' | 'Layer already exists' | `Mounted from ${string}`;

/** One line of the pull endpoint's NDJSON answer. */
export type PullEvent =
  | { type: 'status'; message: string }
  | { type: 'layer'; id: string; action: LayerAction; current?: number; total?: number }
  | { type: 'warning'; message: string }
  | { type: 'done'; image: ImageSummary }
  | { type: 'error'; message: string };

export interface ImageSummary {
  /** Familiar repository name, e.g. `127.0.0.1:5000/team/app` or `busybox`. */
  repository: string;
  tag: string | undefined;
  /** What the reference resolved to in the registry (an index or a manifest). */
  digest: string;
  /** The config digest, as docker's IMAGE ID. */
  id: string;
  created: string | undefined;
  /** Bytes of the uncompressed layers. */
  size: number;
}

export interface RemoveResult {
  untagged: string[];
  deleted: string[];
}

export interface PruneResult {
  deletedBlobs: string[];
  deletedSnapshots: string[];
  reclaimedBytes: number;
}

const stringList = z.array(z.string()).optional();

/**
 * `POST /v1/containers`: a run request with the flags as the user typed them; the daemon parses and
 * validates their meaning (container/run-options.ts) so every client gets the same answers.
 */
export const runRequestSchema = z.object({
  image: z.string(),
  name: z.string().optional(),
  /** Arguments after the image (replace the image's Cmd). */
  command: stringList,
  /** `--entrypoint`: one executable; '' clears the image's. */
  entrypoint: z.string().optional(),
  /** `-e KEY=VALUE`; a bare `KEY` was already resolved from the CLI's environment. */
  env: stringList,
  /** `-v name:/path[:ro]` or `-v /host:/path[:ro]`. */
  volumes: stringList,
  /** `--tmpfs /path[:options]`. */
  tmpfs: stringList,
  /** `-p [ip:][hostPort:]containerPort[/proto]`. */
  publish: stringList,
  /** `--memory 64m` (b, k, m, g). */
  memory: z.string().optional(),
  /** `--cpus 1.5`. */
  cpus: z.string().optional(),
  pidsLimit: z.number().optional(),
  readOnly: z.boolean().optional(),
  /** `-i`: keep the container's stdin open for one attached client to write to. */
  interactive: z.boolean().optional(),
  /** `-t`: run the process on a pseudo-terminal. */
  tty: z.boolean().optional(),
  /** With `-t`: the terminal's size at each start (docker's ConsoleSize), the client's at `run`. */
  consoleSize: z.object({ columns: z.number().int().min(1).max(65535), rows: z.number().int().min(1).max(65535) }).optional(),
  /** `bridge` (default), `host` or `none`. */
  network: z.string().optional(),
  /** `no` (default), `on-failure[:N]`, `always`, `unless-stopped`. */
  restart: z.string().optional(),
  user: z.string().optional(),
  workdir: z.string().optional(),
  hostname: z.string().optional(),
  stopSignal: z.string().optional(),
  stopTimeout: z.number().optional(),
  /** `--security-opt seccomp=unconfined`: the only option the agent knows. */
  securityOpt: stringList,
  /** `--health-cmd` (a CMD-SHELL probe) and the durations as Go writes them (`30s`, `1m30s`, `200ms`). */
  healthCmd: z.string().optional(),
  /**
   * The probe as the Engine API's Healthcheck.Test takes it, for API clients (a deployed replica's compose
   * healthcheck): `["CMD", ...argv]` runs without a shell, `["CMD-SHELL", command]` through the image's.
   */
  healthTest: z.array(z.string()).optional(),
  healthInterval: z.string().optional(),
  healthTimeout: z.string().optional(),
  healthStartPeriod: z.string().optional(),
  healthStartInterval: z.string().optional(),
  healthRetries: z.union([z.number(), z.string()]).optional(),
  /** `--no-healthcheck`: disables the image's HEALTHCHECK. */
  noHealthcheck: z.boolean().optional(),
  /** `--label KEY=VALUE`: the container's own labels (the image's are not merged in). */
  labels: z.record(z.string(), z.string()).optional(),
});
export type RunRequest = z.infer<typeof runRequestSchema>;

/** `POST /v1/containers`: creates (does not start) a container. `autoRemove` is `--rm` (docker's AutoRemove). */
export const createRequestSchema = runRequestSchema.extend({ autoRemove: z.boolean().optional() });
export type CreateRequest = z.infer<typeof createRequestSchema>;

/** A line of `ps`. */
export interface ContainerSummary {
  id: string;
  name: string;
  image: string;
  command: string;
  createdAt: string;
  status: ContainerStatus;
  exitCode: number | undefined;
  startedAt: string | undefined;
  finishedAt: string | undefined;
  restartCount: number;
  ports: PortMapping[];
  /** The health check's status while it runs one (`ps` shows `Up 2 minutes (healthy)`). */
  health: HealthStatus | undefined;
  /** Frozen by `pause`: ps shows `Up 5 seconds (Paused)`. */
  paused: boolean;
}

/** `GET /v1/volumes`: a named volume and the containers that mount it. */
export interface VolumeSummary {
  name: string;
  mountpoint: string;
  usedBy: string[];
}

/** One line of `GET /v1/containers/{id}/logs` (NDJSON): an entry of the container's json-file log. */
export type LogLine = LogEntry;

/** The last line of `POST /v1/containers/{id}/start?attach=true`, after the run's log lines. */
export interface RunExit {
  exitCode: number;
}

/** `POST /v1/containers/{id}/exec`. */
export const execRequestSchema = z.object({
  command: z.array(z.string()).min(1),
  env: stringList,
  user: z.string().optional(),
  workdir: z.string().optional(),
});
export type ExecRequest = z.infer<typeof execRequestSchema>;

/** `POST /v1/volumes`. */
export const volumeRequestSchema = z.object({ name: z.string() });
export type VolumeRequest = z.infer<typeof volumeRequestSchema>;

/** One line of the exec answer (NDJSON): output as base64, then the exit code. */
export type ExecEvent = { type: 'output'; stream: 'stdout' | 'stderr'; data: string } | { type: 'exit'; exitCode: number };

/**
 * `GET /v1/containers/{id}`: docker's `inspect` document (the fields the agent knows), built from the daemon's
 * record by daemon/inspect-result.ts so that the record can change without changing the API.
 */
export interface InspectResult {
  Id: string;
  Name: string;
  Created: string;
  Path: string;
  Args: string[];
  State: {
    Status: ContainerStatus | 'paused';
    Running: boolean;
    Paused: boolean;
    Restarting: boolean;
    OOMKilled: boolean;
    Pid: number;
    ExitCode: number;
    Error: string;
    StartedAt: string;
    FinishedAt: string;
    /** Only for a container with a health check that has run: docker's {Status, FailingStreak, Log}. */
    Health: HealthState | undefined;
  };
  /** The image id (config digest). */
  Image: string;
  RestartCount: number;
  HostConfig: {
    AutoRemove: boolean;
    NetworkMode: string;
    ReadonlyRootfs: boolean;
    Memory: number;
    CpuQuota: number;
    CpuPeriod: number;
    PidsLimit: number;
    RestartPolicy: { Name: string; MaximumRetryCount: number };
    PortBindings: Record<string, Array<{ HostIp: string; HostPort: string }>>;
  };
  Config: {
    Hostname: string;
    User: string;
    Env: string[];
    Cmd: string[];
    Entrypoint: string[] | null;
    WorkingDir: string;
    /** The image reference as the user gave it. */
    Image: string;
    OpenStdin: boolean;
    Tty: boolean;
    StopSignal: string;
    StopTimeout: number;
    /** The image's HEALTHCHECK merged with the --health-* flags, zero fields left out (as docker shows it). */
    Healthcheck: Partial<HealthConfig> | undefined;
    Labels: Record<string, string>;
  };
  Mounts: Array<{ Type: 'volume' | 'bind' | 'tmpfs'; Name: string; Source: string; Destination: string; RW: boolean }>;
  NetworkSettings: {
    IPAddress: string;
    Gateway: string;
    Ports: Record<string, Array<{ HostIp: string; HostPort: string }>>;
  };
}

/** The body of every refused request: platform/errors.ts's CodedError as JSON, one entry. */
export interface ApiError {
  errors: Array<{ code: string; message: string; detail?: unknown }>;
}

/** The `detail` of START_FAILED: docker's exit code for `run` (125, 126, 127). */
export interface StartFailedDetail {
  exitCode: number;
}
