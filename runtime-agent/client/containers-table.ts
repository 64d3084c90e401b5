import type { ContainerSummary } from '../api.js';
import type { PortMapping } from '../container/container-spec.js';
import { humanAge, humanSince } from './human-format.js';
import { table } from './table.js';

const HEADERS = ['CONTAINER ID', 'IMAGE', 'COMMAND', 'CREATED', 'STATUS', 'PORTS', 'NAMES'];
const COMMAND_WIDTH = 20;

/** `docker ps` output; `noTrunc` keeps full ids and commands. */
export function containersTable(containers: readonly ContainerSummary[], options: { noTrunc?: boolean } = {}, now = Date.now()): string {
  const rows = containers.map((container) => [
    options.noTrunc ? container.id : container.id.slice(0, 12),
    container.image,
    `"${options.noTrunc ? container.command : truncate(container.command, COMMAND_WIDTH)}"`,
    humanAge(container.createdAt, now),
    statusText(container, now),
    container.ports.map(portText).join(', '),
    container.name,
  ]);
  return table(HEADERS, rows);
}

/** `Up 5 seconds`, `Exited (0) 3 seconds ago`, `Restarting (1) 2 seconds ago`, `Created`. */
export function statusText(container: ContainerSummary, now = Date.now()): string {
  switch (container.status) {
    case 'running':
      return (
        `Up ${humanSince(container.startedAt, now) ?? ''}`.trimEnd() + (container.paused ? ' (Paused)' : healthSuffix(container.health))
      );
    case 'restarting':
      return `Restarting (${container.exitCode ?? 0}) ${humanAge(container.finishedAt, now)}`;
    case 'exited':
      return `Exited (${container.exitCode ?? 0}) ${humanAge(container.finishedAt, now)}`;
    default:
      return 'Created';
  }
}

/** docker's ` (health: starting)`, ` (healthy)`, ` (unhealthy)`; nothing without a health check. */
function healthSuffix(health: ContainerSummary['health']): string {
  if (health === undefined) return '';
  return health === 'starting' ? ' (health: starting)' : ` (${health})`;
}

/** `0.0.0.0:8080->80/tcp`, as docker prints a published port. */
export function portText(port: PortMapping): string {
  return `${port.hostIp}:${port.hostPort}->${port.containerPort}/${port.protocol}`;
}

function truncate(text: string, width: number): string {
  return text.length <= width ? text : `${text.slice(0, width - 1)}…`;
}
