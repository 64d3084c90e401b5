import type { ContainerStatus } from './container/container-record.js';
import type { PortMapping } from './container/container-spec.js';
import type { LogEntry } from './container/logs/log-entry.js';

/** The daemon's HTTP/JSON API over its unix socket: paths and the documents exchanged, shared by daemon and CLI. */

export const ApiPath = {
  ping: '/v1/ping',
  images: '/v1/images',
  pull: '/v1/images/pull',
  prune: '/v1/prune',
  containers: '/v1/containers',
  auth: '/v1/auth',
  volumes: '/v1/volumes',
} as const;

/** `POST /v1/auth` (login): checked against the registry, then saved for its pulls. */
export interface LoginRequest {
  /** `host[:port]` as in image references; docker.io when absent. */
  registry?: string;
  username: string;
  password: string;
}

export interface PullRequest {
  reference: string;
  username?: string;
  password?: string;
}

/** Docker's per-layer progress vocabulary, so the output reads like `docker pull`. */
export type LayerAction =
  | 'Pulling fs layer'
  | 'Already exists'
  | 'Downloading'
  | 'Verifying Checksum'
  | 'Download complete'
  | 'Extracting'
  | 'Pull complete';

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

/**
 * `POST /v1/containers`: a run request with the flags as the user typed them; the daemon parses and
 * validates them (container/run-options.ts) so every client gets the same answers.
 */
export interface RunRequest {
  image: string;
  name?: string;
  /** Arguments after the image (replace the image's Cmd). */
  command?: string[];
  /** `--entrypoint`: one executable; '' clears the image's. */
  entrypoint?: string;
  /** `-e KEY=VALUE`; a bare `KEY` was already resolved from the CLI's environment. */
  env?: string[];
  /** `-v name:/path[:ro]` or `-v /host:/path[:ro]`. */
  volumes?: string[];
  /** `--tmpfs /path[:options]`. */
  tmpfs?: string[];
  /** `-p [ip:][hostPort:]containerPort[/proto]`. */
  publish?: string[];
  /** `--memory 64m` (b, k, m, g). */
  memory?: string;
  /** `--cpus 1.5`. */
  cpus?: string;
  pidsLimit?: number;
  readOnly?: boolean;
  /** `-i`: keep the container's stdin open for one attached client to write to. */
  interactive?: boolean;
  /** `bridge` (default), `host` or `none`. */
  network?: string;
  /** `no` (default), `on-failure[:N]`, `always`, `unless-stopped`. */
  restart?: string;
  user?: string;
  workdir?: string;
  hostname?: string;
  stopSignal?: string;
  stopTimeout?: number;
  /** `--security-opt seccomp=unconfined`: the only option the agent knows. */
  securityOpt?: string[];
}

/** `POST /v1/containers`: creates (does not start) a container. `autoRemove` is `--rm` for detached runs. */
export interface CreateRequest extends RunRequest {
  autoRemove?: boolean;
}

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
}

/** `GET /v1/volumes`: a named volume and the containers that mount it. */
export interface VolumeSummary {
  name: string;
  mountpoint: string;
  usedBy: string[];
}

/** One line of `GET /v1/containers/{id}/logs` (NDJSON): an entry of the container's json-file log. */
export type LogLine = LogEntry;

/** `POST /v1/containers/{id}/exec`. */
export interface ExecRequest {
  command: string[];
  env?: string[];
  user?: string;
  workdir?: string;
}

/** One line of the exec answer (NDJSON): output as base64, then the exit code. */
export type ExecEvent = { type: 'output'; stream: 'stdout' | 'stderr'; data: string } | { type: 'exit'; exitCode: number };

export interface ApiError {
  message: string;
  /** For a container that could not start: docker's exit code for `run` (125, 126, 127). */
  exitCode?: number;
}
