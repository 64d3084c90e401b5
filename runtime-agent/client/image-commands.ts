import { createReadStream, createWriteStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { pipeline } from 'node:stream/promises';
import type { Command } from 'commander';
import { shortDigest } from '../../oci/digest.js';
import { VerbPath } from '../api-paths.js';
import type { DiskUsage, HistoryEntry, ImageInspect, LoadResult, PushEvent, SystemPruneResult } from '../verbs-api.js';
import type { AgentClient } from './agent-client.js';
import { compileFormat } from './format-template.js';
import { humanAge, humanSize } from './human-format.js';
import { inspectOutput } from './format-rows.js';
import { table } from './table.js';

/** `save`: the daemon writes the archive (docker's layout, or a plain OCI layout); it goes to the file or to stdout. */
export async function saveImages(
  client: AgentClient,
  images: string[],
  format: 'docker' | 'oci',
  output: string | undefined,
): Promise<void> {
  const answer = await client.raw('POST', VerbPath.save, JSON.stringify({ images, format }), 'application/json');
  await pipeline(answer, output ? createWriteStream(output) : process.stdout);
}

/** docker's image verbs (tag, push, save, load, image inspect, history) and `system df` / `system prune`. */

type ClientOf = (command: Command) => AgentClient;

const CREATED_BY_WIDTH = 45;

export function addImageCommands(program: Command, client: ClientOf): void {
  program
    .command('tag')
    .description('create a tag TARGET_IMAGE that refers to SOURCE_IMAGE')
    .argument('<source>', 'SOURCE_IMAGE[:TAG] or an image id')
    .argument('<target>', 'TARGET_IMAGE[:TAG]')
    .action(async (source: string, target: string, _options, command: Command) => {
      await client(command).call('POST', VerbPath.tag, { source, target });
    });

  program
    .command('push')
    .description('push an image to a registry (with the credentials `login` saved)')
    .argument('<name>', 'NAME[:TAG]')
    .action(async (reference: string, _options, command: Command) => {
      await pushWithProgress(client(command), reference, process.stdout);
    });

  program
    .command('save')
    .description('save images to a tar archive (docker save layout; --format oci for a plain OCI layout)')
    .argument('<image...>')
    .option('-o, --output <file>', 'write to a file instead of standard output')
    .option('--format <format>', 'docker (default: loads in docker and OCI tools) or oci', 'docker')
    .action(async (images: string[], options: { output?: string; format: string }, command: Command) => {
      if (options.format !== 'docker' && options.format !== 'oci')
        throw new Error(`unknown --format ${JSON.stringify(options.format)}: docker or oci`);
      if (!options.output && process.stdout.isTTY) throw new Error('cowardly refusing to save to a terminal. Use the -o flag or redirect');
      await saveImages(client(command), images, options.format, options.output);
    });

  program
    .command('load')
    .description('load images from a tar archive (docker save or OCI layout) or standard input')
    .option('-i, --input <file>', 'read from a file instead of standard input')
    .option('-q, --quiet', 'print nothing')
    .action(async (options: { input?: string; quiet?: boolean }, command: Command) => {
      const input = options.input ? createReadStream(options.input) : process.stdin;
      if (!options.input && process.stdin.isTTY) throw new Error('requested load from stdin, but stdin is empty');
      const answer = await client(command).raw('POST', VerbPath.load, input, 'application/x-tar');
      const result = JSON.parse(await readAll(answer)) as LoadResult;
      if (!options.quiet) for (const line of result.loaded) console.log(line);
    });

  const image = program.command('image').description('manage images');
  image
    .command('inspect')
    .description("show images' details as JSON")
    .argument('<image...>')
    .option('-f, --format <template>', 'Go-template-like format, e.g. "{{.Id}}" or "{{json .Config}}"')
    .action(async (names: string[], options: { format?: string }, command: Command) => {
      const documents = await Promise.all(
        names.map((name) => client(command).call<ImageInspect>('GET', `${VerbPath.imageInspect}?${new URLSearchParams({ name })}`)),
      );
      console.log(inspectOutput(documents, options.format));
    });

  program
    .command('history')
    .description('show the history of an image')
    .argument('<image>')
    .option('--no-trunc', 'do not truncate the output')
    .option('-q, --quiet', 'only show image ids')
    .option('-H, --human', 'sizes and dates in human readable format', true)
    .option('--format <template>', 'Go-template-like format, e.g. "{{.CreatedBy}}"')
    .action(async (name: string, options: { trunc: boolean; quiet?: boolean; format?: string }, command: Command) => {
      const entries = await client(command).call<HistoryEntry[]>('GET', `${VerbPath.history}?${new URLSearchParams({ name })}`);
      const rows = entries.map((entry) => historyRow(entry, options.trunc));
      if (options.quiet) console.log(rows.map((row) => row.ID).join('\n'));
      else console.log(compileFormat(options.format ?? DEFAULT_HISTORY_FORMAT, HISTORY_HEADERS).render(rows));
    });

  const system = program.command('system').description('manage the agent');
  system
    .command('df')
    .description('show disk usage')
    .action(async (_options, command: Command) => {
      console.log(diskUsageTable(await client(command).call<DiskUsage>('GET', VerbPath.systemDf)));
    });
  system
    .command('prune')
    .description('remove stopped containers and unused content (-a: unused images, --volumes: unused volumes)')
    .option('-a, --all', 'remove every image no container uses, not only unreferenced content')
    .option('--volumes', 'also remove volumes no container uses')
    .option('-f, --force', 'do not prompt for confirmation')
    .action(async (options: { all?: boolean; volumes?: boolean; force?: boolean }, command: Command) => {
      if (!options.force && !(await confirm(pruneWarning(options)))) return;
      const result = await client(command).call<SystemPruneResult>('POST', VerbPath.systemPrune, {
        all: options.all === true,
        volumes: options.volumes === true,
      });
      console.log(pruneReport(result));
    });
}

/** Pushes through the daemon with docker-style progress on `output`. */
export async function pushWithProgress(agent: AgentClient, reference: string, output: NodeJS.WriteStream): Promise<void> {
  const { pullDisplay } = await import('./pull-display.js');
  const display = await pullDisplay(output);
  let last: PushEvent | undefined;
  try {
    for await (const event of agent.items<PushEvent>('POST', VerbPath.push, { reference }, 'the push')) {
      last = event;
      if (event.type !== 'done') display.show(event);
    }
  } finally {
    display.stop();
  }
  if (last?.type !== 'done') throw new Error(last?.type === 'error' ? last.message : 'the daemon ended the push without a result');
}

const DEFAULT_HISTORY_FORMAT = 'table {{.ID}}\\t{{.CreatedSince}}\\t{{.CreatedBy}}\\t{{.Size}}\\t{{.Comment}}';
const HISTORY_HEADERS = {
  ID: 'IMAGE',
  CreatedSince: 'CREATED',
  CreatedAt: 'CREATED AT',
  CreatedBy: 'CREATED BY',
  Size: 'SIZE',
  Comment: 'COMMENT',
};

function historyRow(entry: HistoryEntry, truncate: boolean) {
  const createdBy = entry.createdBy.replace(/\s+/g, ' ');
  return {
    ID: entry.id === '<missing>' || !truncate ? entry.id : shortDigest(entry.id),
    CreatedSince: humanAge(entry.created),
    CreatedAt: entry.created ?? '',
    CreatedBy: truncate && createdBy.length > CREATED_BY_WIDTH ? `${createdBy.slice(0, CREATED_BY_WIDTH - 1)}…` : createdBy,
    Size: humanSize(entry.size),
    Comment: entry.comment,
  };
}

/** docker system df's summary: TYPE, TOTAL, ACTIVE, SIZE, RECLAIMABLE. */
export function diskUsageTable(usage: DiskUsage): string {
  const imagesSize = usage.images.reduce((sum, image) => sum + image.size, 0);
  const unusedImages = usage.images
    .filter((image) => image.containers === 0)
    .reduce((sum, image) => sum + image.size - image.sharedSize, 0);
  const containersSize = usage.containers.reduce((sum, container) => sum + container.sizeRw, 0);
  const stopped = usage.containers
    .filter((container) => container.status !== 'running')
    .reduce((sum, container) => sum + container.sizeRw, 0);
  const volumesSize = usage.volumes.reduce((sum, volume) => sum + volume.size, 0);
  const unusedVolumes = usage.volumes.filter((volume) => volume.links === 0).reduce((sum, volume) => sum + volume.size, 0);
  return table(
    ['TYPE', 'TOTAL', 'ACTIVE', 'SIZE', 'RECLAIMABLE'],
    [
      ['Images', usage.images.length, usage.images.filter((image) => image.containers > 0).length, imagesSize, unusedImages],
      [
        'Containers',
        usage.containers.length,
        usage.containers.filter((container) => container.status === 'running').length,
        containersSize,
        stopped,
      ],
      ['Local Volumes', usage.volumes.length, usage.volumes.filter((volume) => volume.links > 0).length, volumesSize, unusedVolumes],
      ['Build Cache', usage.buildCache.count, 0, usage.buildCache.size, usage.buildCache.size],
    ].map(([type, total, active, size, reclaimable]) => [
      String(type),
      String(total),
      String(active),
      humanSize(Number(size)),
      reclaimableText(Number(reclaimable), Number(size)),
    ]),
  );
}

function reclaimableText(reclaimable: number, size: number): string {
  return size > 0 ? `${humanSize(reclaimable)} (${Math.floor((100 * reclaimable) / size)}%)` : humanSize(reclaimable);
}

function pruneWarning(options: { all?: boolean; volumes?: boolean }): string {
  return [
    'WARNING! This will remove:',
    '  - all stopped containers',
    ...(options.volumes ? ['  - all volumes not used by at least one container'] : []),
    options.all ? '  - all images without at least one container associated to them' : '  - all content no image references',
    '',
    'Are you sure you want to continue? [y/N] ',
  ].join('\n');
}

function pruneReport(result: SystemPruneResult): string {
  const sections: Array<[string, string[]]> = [
    ['Deleted Containers:', result.deletedContainers],
    ['Deleted Volumes:', result.deletedVolumes],
    ['Deleted Images:', result.deletedImages],
  ];
  return [
    ...sections.filter(([, lines]) => lines.length > 0).map(([title, lines]) => [title, ...lines, ''].join('\n')),
    `Total reclaimed space: ${humanSize(result.reclaimedBytes)}`,
  ].join('\n');
}

/** Asks on the terminal (or reads a line of standard input); only y or yes goes on. */
async function confirm(question: string): Promise<boolean> {
  const reader = createInterface({ input: process.stdin, output: process.stdout });
  const answer = await new Promise<string>((resolve) => {
    reader.question(question, resolve);
    reader.once('close', () => resolve(''));
  });
  reader.close();
  return /^y(es)?$/i.test(answer.trim());
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  let text = '';
  for await (const chunk of stream) text += String(chunk);
  return text;
}
