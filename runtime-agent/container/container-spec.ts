import type { HealthConfig } from './health/health-config.js';

/**
 * What a container is asked to be, after the run request has been parsed and validated: the one shape the
 * OCI config builder, the network manager and the container manager agree on.
 */

export type NetworkMode = 'bridge' | 'host' | 'none';

export interface PortMapping {
  /** Host address to listen on; '0.0.0.0' for all. */
  hostIp: string;
  hostPort: number;
  containerPort: number;
  protocol: 'tcp' | 'udp';
}

export type MountSpec =
  /** `-v name:/path[:ro]`: a directory under the agent's data dir, created on first use, kept after `rm`. */
  | { type: 'volume'; name: string; target: string; readOnly: boolean }
  /** `-v /host/path:/path[:ro]`. */
  | { type: 'bind'; source: string; target: string; readOnly: boolean }
  /** `--tmpfs /path[:opts]`; options as mount(8) takes them (size=64m,mode=1777,...). */
  | { type: 'tmpfs'; target: string; options: string[] };

export type RestartPolicy =
  { name: 'no' } | { name: 'on-failure'; maximumRetryCount: number | undefined } | { name: 'always' } | { name: 'unless-stopped' };

export interface ResourceLimits {
  /** cgroup memory.limit_in_bytes; swap is limited to the same (docker would allow as much swap again). */
  memoryBytes: number | undefined;
  /** `--cpus 1.5` becomes quota 150000 over period 100000. */
  cpuQuota: number | undefined;
  cpuPeriod: number | undefined;
  pidsLimit: number | undefined;
}

export interface ContainerSpec {
  name: string;
  /** The image reference as the user gave it, and the image record's key it resolved to. */
  image: string;
  /** `--entrypoint`: undefined keeps the image's; [] (from `--entrypoint ''`) clears it. */
  entrypoint: string[] | undefined;
  /** Arguments after the image; undefined keeps the image's Cmd. */
  command: string[] | undefined;
  /** `-e KEY=VALUE` (and `-e KEY` taken from the CLI's environment); overrides the image's Env by key. */
  env: string[];
  /** `--user name|uid[:group|gid]`; undefined keeps the image's User. */
  user: string | undefined;
  /** `-w`; undefined keeps the image's WorkingDir (or /). */
  workingDir: string | undefined;
  /** `--hostname`; defaults to the first 12 hex digits of the container id, as docker does. */
  hostname: string | undefined;
  mounts: MountSpec[];
  readOnlyRootfs: boolean;
  /** `-i` (docker's OpenStdin): the process's stdin is a pipe the first attached client writes to and closes. */
  openStdin: boolean;
  /** `-t` (docker's Tty): the process runs on a pseudo-terminal clients attach to. Older records lack it: none. */
  tty: boolean;
  /** With `-t`: the terminal's size at each start until a client resizes it; 80x24 when the client had none. */
  consoleSize: { columns: number; rows: number } | undefined;
  network: NetworkMode;
  ports: PortMapping[];
  limits: ResourceLimits;
  restart: RestartPolicy;
  /** `--stop-signal`; undefined keeps the image's StopSignal (or SIGTERM). */
  stopSignal: string | undefined;
  /** Seconds between the stop signal and SIGKILL (docker's default 10). */
  stopTimeoutSeconds: number;
  /**
   * The default seccomp profile (true) or none (`--security-opt seccomp=unconfined`). Records written before
   * this field existed lack it: they get the profile.
   */
  seccomp: boolean;
  /**
   * no_new_privileges: on by default (stricter than docker, where setuid binaries run by a non-root user gain
   * their owner's rights); `--security-opt no-new-privileges=false` turns it off. Older records lack it: on.
   */
  noNewPrivileges: boolean;
  /** The --health-* flags (`["NONE"]` for --no-healthcheck); undefined keeps the image's HEALTHCHECK. Older records lack it. */
  healthcheck: HealthConfig | undefined;
  /** `--label KEY=VALUE`; records written before labels existed lack them: none. */
  labels: Record<string, string> | undefined;
}
