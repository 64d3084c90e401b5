import type { InspectResult } from '../api.js';
import type { ContainerRecord } from '../container/container-record.js';
import type { MountSpec, PortMapping } from '../container/container-spec.js';
import { containerHostname } from '../spec/oci-spec.js';
import { healthcheckShown } from '../container/health/health-config.js';

/** Docker's zero time, which `inspect` shows for a container that never started or never stopped. */
const NEVER = '0001-01-01T00:00:00Z';

/** The API's view of a container (docker's `inspect` names), built from the daemon's record. */
export function inspectResult(record: ContainerRecord): InspectResult {
  const { spec, state } = record;
  return {
    Id: record.id,
    Name: `/${record.name}`,
    Created: record.createdAt,
    Path: record.path,
    Args: record.args,
    State: {
      Status: state.paused ? 'paused' : state.status,
      Running: state.status === 'running',
      Paused: state.paused === true,
      Restarting: state.status === 'restarting',
      OOMKilled: state.oomKilled === true,
      Pid: state.pid ?? 0,
      ExitCode: state.exitCode ?? 0,
      Error: state.error ?? '',
      StartedAt: state.startedAt ?? NEVER,
      FinishedAt: state.finishedAt ?? NEVER,
      Health: state.health,
    },
    Image: record.imageId,
    RestartCount: state.restartCount,
    HostConfig: {
      AutoRemove: record.autoRemove,
      NetworkMode: spec.network,
      ReadonlyRootfs: spec.readOnlyRootfs,
      Memory: spec.limits.memoryBytes ?? 0,
      CpuQuota: spec.limits.cpuQuota ?? 0,
      CpuPeriod: spec.limits.cpuPeriod ?? 0,
      PidsLimit: spec.limits.pidsLimit ?? 0,
      RestartPolicy: {
        Name: spec.restart.name,
        MaximumRetryCount: spec.restart.name === 'on-failure' ? (spec.restart.maximumRetryCount ?? 0) : 0,
      },
      PortBindings: portMap(spec.ports),
    },
    Config: {
      Hostname: containerHostname(spec, record.id),
      User: spec.user ?? record.imageConfig.User ?? '',
      // The image's Env, then the user's -e: a later entry wins, as in the process's environment.
      Env: [...(record.imageConfig.Env ?? []), ...spec.env],
      Cmd: spec.command ?? record.imageConfig.Cmd ?? [],
      Entrypoint: spec.entrypoint ?? record.imageConfig.Entrypoint ?? null,
      WorkingDir: spec.workingDir ?? record.imageConfig.WorkingDir ?? '',
      Image: spec.image,
      OpenStdin: spec.openStdin,
      Tty: spec.tty === true,
      StopSignal: record.stopSignal,
      StopTimeout: spec.stopTimeoutSeconds,
      Healthcheck: healthcheckShown(record.healthcheck),
      Labels: spec.labels ?? {},
    },
    Mounts: spec.mounts.map(mountOf),
    NetworkSettings: {
      IPAddress: record.network?.ipAddress ?? '',
      Gateway: record.network?.gateway ?? '',
      Ports: portMap(record.network?.ports ?? []),
    },
  };
}

function mountOf(mount: MountSpec): InspectResult['Mounts'][number] {
  if (mount.type === 'volume') return { Type: 'volume', Name: mount.name, Source: '', Destination: mount.target, RW: !mount.readOnly };
  if (mount.type === 'bind') return { Type: 'bind', Name: '', Source: mount.source, Destination: mount.target, RW: !mount.readOnly };
  return { Type: 'tmpfs', Name: '', Source: '', Destination: mount.target, RW: true };
}

/** docker's `"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}]`. */
function portMap(ports: readonly PortMapping[]): InspectResult['NetworkSettings']['Ports'] {
  const map: InspectResult['NetworkSettings']['Ports'] = {};
  for (const port of ports) {
    const key = `${port.containerPort}/${port.protocol}`;
    map[key] = [...(map[key] ?? []), { HostIp: port.hostIp, HostPort: String(port.hostPort) }];
  }
  return map;
}
