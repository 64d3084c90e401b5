/**
 * A stack as Berth stores and runs it: the compose file's meaning with every default filled in, durations
 * in milliseconds, sizes in bytes. The registry keeps it in revisions; the agents receive it in assignments.
 */
export interface StackSpec {
  services: Record<string, ServiceSpec>;
}

export interface ServiceSpec {
  /** As written in the file: a repository of this registry with a tag or digest. */
  image: string;
  repository: string;
  tag: string | null;
  /** Set when the file pins a digest; otherwise the registry resolves `tag` at deploy time. */
  digest: string | null;
  /** null: the image's own. */
  command: string[] | null;
  entrypoint: string[] | null;
  environment: Record<string, string>;
  ports: PortSpec[];
  volumes: MountSpec[];
  /** null: the image's own health check (or none); `disable: true` and `test: [NONE]` give `{ test: ['NONE'] }`. */
  healthcheck: HealthcheckSpec | null;
  labels: Record<string, string>;
  stopSignal: string;
  stopGracePeriodMs: number;
  user: string | null;
  workingDir: string | null;
  readOnly: boolean;
  tmpfs: string[];
  deploy: DeploySpec;
  berth: BerthSpec;
}

export interface PortSpec {
  target: number;
  /** null: the node picks a free port. */
  published: number | null;
  hostIp: string | null;
  protocol: 'tcp' | 'udp';
}

export interface MountSpec {
  type: 'bind' | 'volume' | 'tmpfs';
  /** The host path (bind), the volume name (volume; null: anonymous), null for tmpfs. */
  source: string | null;
  target: string;
  readOnly: boolean;
}

export interface HealthcheckSpec {
  /** `['CMD', ...argv]`, `['CMD-SHELL', command]` or `['NONE']`. */
  test: string[];
  intervalMs: number;
  timeoutMs: number;
  retries: number;
  startPeriodMs: number;
  startIntervalMs: number;
}

export type ConstraintField = { kind: 'hostname' } | { kind: 'label'; name: string };

export interface PlacementConstraint {
  field: ConstraintField;
  operator: '==' | '!=';
  value: string;
}

export type FailureAction = 'rollback' | 'pause' | 'continue';

export interface UpdatePolicy {
  /** Replicas replaced at once; 0: all at once. */
  parallelism: number;
  delayMs: number;
  failureAction: FailureAction;
  monitorMs: number;
  maxFailureRatio: number;
  order: 'start-first' | 'stop-first';
}

export interface DeploySpec {
  mode: 'replicated' | 'global';
  /** For `replicated`; ignored for `global`. */
  replicas: number;
  labels: Record<string, string>;
  placement: { constraints: PlacementConstraint[]; maxReplicasPerNode: number | null };
  limits: ResourceAmounts;
  reservations: ResourceAmounts;
  restartPolicy: { condition: 'none' | 'on-failure' | 'any'; delayMs: number; maxAttempts: number | null; windowMs: number };
  update: UpdatePolicy;
  rollback: UpdatePolicy;
}

export interface ResourceAmounts {
  /** CPUs, e.g. 0.5. */
  cpus: number | null;
  memoryBytes: number | null;
  pids: number | null;
}

/** An http check passes on a 2xx or 3xx answer, a tcp check when the port accepts a connection. */
export type ProbeSpec = ({ kind: 'http'; port: number; path: string } | { kind: 'tcp'; port: number }) & {
  /** With the compose healthcheck's meaning and defaults. */
  timing: Omit<HealthcheckSpec, 'test'>;
};

/** What compose lacks, under `x-berth:`. */
export interface BerthSpec {
  /** Roll out whenever this tag of the service's repository is pushed. */
  track: string | null;
  /** A new replica not healthy this long after it started has failed. */
  healthyDeadlineMs: number;
  /** A rollout not finished this long after it started has failed. */
  progressDeadlineMs: number;
  checks: ProbeSpec[];
}
