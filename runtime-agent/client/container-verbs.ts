import { lstat, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import type { Command } from 'commander';
import { ApiPath, ContainerVerb, PATH_STAT_HEADER } from '../api-paths.js';
import type { PathStat, StatsSample, TopResult } from '../verbs-api.js';
import type { AgentClient } from './agent-client.js';
import { compileFormat } from './format-template.js';
import { binarySize, humanSize } from './human-format.js';
import { table } from './table.js';

/** docker's container verbs cp, stats, top, port, rename, pause and unpause. */

type ClientOf = (command: Command) => AgentClient;

export function addContainerVerbs(program: Command, client: ClientOf): void {
  program
    .command('cp')
    .description('copy files between a container and the local filesystem: cp [-aL] CONTAINER:SRC DEST | SRC CONTAINER:DEST')
    .argument('<source>')
    .argument('<destination>')
    .option('-a, --archive', 'archive mode: keep uid and gid')
    .option('-L, --follow-link', 'follow a symlink given as the source')
    .action(async (source: string, destination: string, options: { archive?: boolean; followLink?: boolean }, command: Command) => {
      const copied = await copy(
        client(command),
        parseCopyArguments(source, destination),
        options.archive === true,
        options.followLink === true,
      );
      console.error(`Successfully copied ${humanSize(copied)} to ${destination}`);
    });

  program
    .command('stats')
    .description('live resource usage of containers (all running ones when none is named)')
    .argument('[container...]')
    .option('--no-stream', 'print one sample and exit')
    .option('--no-trunc', 'do not truncate ids')
    .option('--format <template>', 'Go-template-like format, e.g. "{{.Name}}: {{.CPUPerc}}"')
    .action(async (containers: string[], options: { stream: boolean; trunc: boolean; format?: string }, command: Command) => {
      const agent = client(command);
      const format = compileFormat(options.format ?? DEFAULT_STATS_FORMAT, STATS_HEADERS);
      const names = containers.length > 0 ? containers : (await agent.containers(false)).map((container) => container.id);
      await showStats(agent, names, { stream: options.stream, noTrunc: !options.trunc, render: (rows) => format.render(rows) });
    });

  program
    .command('top')
    .description('show the processes of a running container: top CONTAINER [ps OPTIONS]')
    .argument('<container>')
    .argument('[ps-options...]')
    .passThroughOptions()
    .action(async (container: string, psOptions: string[], _options, command: Command) => {
      const query = new URLSearchParams(psOptions.map((arg) => ['arg', arg]));
      const top = await client(command).call<TopResult>('GET', `${containerPath(container)}/${ContainerVerb.top}?${query}`);
      console.log(table(top.Titles, top.Processes));
    });

  program
    .command('port')
    .description("list a container's published ports, or the host address of one: port CONTAINER [PRIVATE_PORT[/PROTO]]")
    .argument('<container>')
    .argument('[private-port]')
    .action(async (container: string, privatePort: string | undefined, _options, command: Command) => {
      const inspected = await client(command).inspect(container);
      console.log(portLines(inspected.NetworkSettings.Ports, inspected.Name.replace(/^\//, ''), privatePort).join('\n'));
    });

  program
    .command('rename')
    .description('rename a container')
    .argument('<container>')
    .argument('<new-name>')
    .action(async (container: string, name: string, _options, command: Command) => {
      await client(command).call('POST', `${containerPath(container)}/${ContainerVerb.rename}`, { name });
    });

  for (const verb of [ContainerVerb.pause, ContainerVerb.unpause]) {
    program
      .command(verb)
      .description(verb === 'pause' ? 'freeze every process of containers' : 'thaw paused containers')
      .argument('<container...>')
      .action(async (containers: string[], _options, command: Command) => {
        for (const container of containers) {
          await client(command).call('POST', `${containerPath(container)}/${verb}`);
          console.log(container);
        }
      });
  }
}

function containerPath(container: string): string {
  return `${ApiPath.containers}/${encodeURIComponent(container)}`;
}

/** One side of a cp: `CONTAINER:PATH` or a local path. */
export type CopyEndpoint = { container: string; path: string } | { container: undefined; path: string };

/**
 * docker's rule: `NAME:PATH` names a container when the part before the first colon holds no slash; a local
 * path with a colon is written `./a:b` or `/a:b`. Exactly one side must be a container.
 */
export function parseCopyArguments(source: string, destination: string): { source: CopyEndpoint; destination: CopyEndpoint } {
  const parsed = { source: parseEndpoint(source), destination: parseEndpoint(destination) };
  if (parsed.source.container === undefined && parsed.destination.container === undefined)
    throw new Error(
      `must specify at least one container source: "${source}" and "${destination}" are both local paths (use CONTAINER:PATH)`,
    );
  if (parsed.source.container !== undefined && parsed.destination.container !== undefined)
    throw new Error('copying between containers is not supported');
  return parsed;
}

function parseEndpoint(argument: string): CopyEndpoint {
  const colon = argument.indexOf(':');
  if (colon < 0 || argument.startsWith('/') || argument.startsWith('.') || argument.slice(0, colon).includes('/'))
    return { container: undefined, path: argument };
  const container = argument.slice(0, colon);
  const inside = argument.slice(colon + 1);
  if (container === '') throw new Error(`invalid CONTAINER:PATH "${argument}": the container name is empty`);
  if (inside === '') throw new Error(`invalid CONTAINER:PATH "${argument}": the path in the container is empty`);
  return { container, path: inside };
}

/** Copies one way or the other; resolves with the bytes of the tar stream moved. */
async function copy(
  agent: AgentClient,
  { source, destination }: { source: CopyEndpoint; destination: CopyEndpoint },
  archive: boolean,
  follow: boolean,
): Promise<number> {
  const { copyTarget, extractCopy, packPath } = await import('../container/copy-archive.js');
  if (source.container !== undefined) {
    const query = new URLSearchParams({ path: source.path, follow: String(follow) });
    const answer = await agent.raw(
      'GET',
      `${containerPath(source.container)}/${ContainerVerb.archive}?${query}`,
      undefined,
      'application/json',
    );
    const pathStat = JSON.parse(String(answer.headers[PATH_STAT_HEADER])) as PathStat;
    const name = pathStat.isDirectory && (source.path.endsWith('/.') || path.posix.basename(source.path) === '') ? '.' : pathStat.name;
    const target = await copyTarget(
      path.resolve(destination.path),
      destination.path.endsWith('/'),
      { name, isDirectory: pathStat.isDirectory },
      destination.path,
    );
    const counted = counting(answer);
    await extractCopy(counted.stream, target, name === '.', {
      preserveOwnership: archive,
      warn: (message) => console.error(`Warning: ${message}`),
    });
    return counted.bytes();
  }
  const local = follow ? await realpath(source.path) : path.resolve(source.path);
  const stats = await (follow ? stat(local) : lstat(local)).catch(() => {
    throw new Error(`could not find the file ${source.path}: no such file or directory`);
  });
  const name = stats.isDirectory() && (source.path.endsWith('/.') || source.path === '.') ? '.' : path.basename(path.resolve(source.path));
  const query = new URLSearchParams({
    path: destination.path,
    name,
    directory: String(stats.isDirectory()),
    copyUIDGID: String(archive),
  });
  const counted = counting(packPath(local, name));
  const answer = await agent.raw(
    'PUT',
    `${containerPath(destination.container ?? '')}/${ContainerVerb.archive}?${query}`,
    counted.stream,
    'application/x-tar',
  );
  answer.resume();
  return counted.bytes();
}

function counting(input: Readable): { stream: Readable; bytes: () => number } {
  let bytes = 0;
  const stream = new PassThrough();
  input.on('data', (chunk: Buffer) => (bytes += chunk.length));
  input.once('error', (error) => stream.destroy(error));
  input.pipe(stream);
  return { stream, bytes: () => bytes };
}

/** `80/tcp -> 0.0.0.0:8080` per binding; with a port asked for, its host addresses alone. */
export function portLines(
  ports: Record<string, Array<{ HostIp: string; HostPort: string }>>,
  container: string,
  privatePort: string | undefined,
): string[] {
  if (privatePort === undefined)
    return Object.entries(ports).flatMap(([port, bindings]) =>
      bindings.map((binding) => `${port} -> ${binding.HostIp}:${binding.HostPort}`),
    );
  const wanted = privatePort.includes('/') ? privatePort : `${privatePort}/tcp`;
  if (!/^\d+\/(tcp|udp|sctp)$/.test(wanted)) throw new Error(`invalid port ${JSON.stringify(privatePort)}: PORT[/PROTO], e.g. 80/tcp`);
  const bindings = ports[wanted];
  if (!bindings || bindings.length === 0) throw new Error(`No public port '${wanted}' published for ${container}`);
  return bindings.map((binding) => `${binding.HostIp}:${binding.HostPort}`);
}

const DEFAULT_STATS_FORMAT =
  'table {{.ID}}\\t{{.Name}}\\t{{.CPUPerc}}\\t{{.MemUsage}}\\t{{.MemPerc}}\\t{{.NetIO}}\\t{{.BlockIO}}\\t{{.PIDs}}';
const STATS_HEADERS = {
  ID: 'CONTAINER ID',
  Container: 'CONTAINER',
  Name: 'NAME',
  CPUPerc: 'CPU %',
  MemUsage: 'MEM USAGE / LIMIT',
  MemPerc: 'MEM %',
  NetIO: 'NET I/O',
  BlockIO: 'BLOCK I/O',
  PIDs: 'PIDS',
};

/** A stats row as docker words it; CPU % is the share of the host's time between two samples, times the cores. */
export function statsRow(previous: StatsSample | undefined, current: StatsSample, noTrunc: boolean, asked: string) {
  const cpuDelta = previous ? current.cpuUsageNs - previous.cpuUsageNs : 0;
  const systemDelta = previous ? current.systemUsageNs - previous.systemUsageNs : 0;
  const cpu = systemDelta > 0 && cpuDelta > 0 ? (cpuDelta / systemDelta) * current.onlineCpus * 100 : 0;
  const memory = current.memoryLimit > 0 ? (current.memoryUsage / current.memoryLimit) * 100 : 0;
  return {
    ID: noTrunc ? current.id : current.id.slice(0, 12),
    Container: asked,
    Name: current.name,
    CPUPerc: `${cpu.toFixed(2)}%`,
    MemUsage: `${binarySize(current.memoryUsage)} / ${binarySize(current.memoryLimit)}`,
    MemPerc: `${memory.toFixed(2)}%`,
    NetIO: `${humanSize(current.netRx)} / ${humanSize(current.netTx)}`,
    BlockIO: `${humanSize(current.blockRead)} / ${humanSize(current.blockWrite)}`,
    PIDs: String(current.pids),
  };
}

interface StatsDisplay {
  stream: boolean;
  noTrunc: boolean;
  render: (rows: ReturnType<typeof statsRow>[]) => string;
}

/** Follows each container's samples; `--no-stream` prints once both samples of each are in, else redraws on each. */
async function showStats(agent: AgentClient, containers: readonly string[], display: StatsDisplay): Promise<void> {
  const latest = new Map<string, { previous: StatsSample | undefined; current: StatsSample }>();
  const redraw = () => {
    const rows = containers.flatMap((name) => {
      const entry = latest.get(name);
      return entry ? [statsRow(entry.previous, entry.current, display.noTrunc, name)] : [];
    });
    process.stdout.write(`${process.stdout.isTTY ? '\x1b[2J\x1b[H' : ''}${display.render(rows)}\n`);
  };
  await Promise.all(
    containers.map(async (name) => {
      const query = new URLSearchParams({ stream: String(display.stream) });
      for await (const sample of agent.items<StatsSample>(
        'GET',
        `${containerPath(name)}/${ContainerVerb.stats}?${query}`,
        undefined,
        'stats',
      )) {
        latest.set(name, { previous: latest.get(name)?.current, current: sample });
        if (display.stream && latest.get(name)?.previous) redraw();
      }
    }),
  );
  if (!display.stream) redraw();
}
