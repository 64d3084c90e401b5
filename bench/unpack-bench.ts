#!/usr/bin/env node
/**
 * Pull + unpack of an image whose one layer holds many small files: `berth-agent pull` against `docker pull`
 * of the same image from the same Berth registry, interleaved, each after removing what the previous pull
 * stored. See bench/README.md ("Many small files"). Not a test: CI does not run it. Needs root.
 *
 *   node dist/bench/unpack-bench.js [--files 100000] [--runs 3]
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { AgentDaemon } from '../test/helpers/agent-daemon.js';
import { layerOf, pushLayout, writeImageLayout, type TarEntry } from '../test/helpers/agent-images.js';
import { DockerDaemon } from '../test/helpers/dockerd.js';
import { DockerWorkbench } from '../test/helpers/docker-workbench.js';
import { run } from '../test/helpers/exec.js';
import { alternate } from './measurements.js';
import { startBerth } from './servers.js';
import { reportBench, startBenchSession } from './session.js';
import { timeCommand, type CommandLine } from './timed-command.js';

const { values } = parseArgs({ options: { files: { type: 'string', default: '100000' }, runs: { type: 'string', default: '3' } } });
const options = { files: Number(values.files), runs: Number(values.runs) };
const FILES_PER_DIRECTORY = 1000;

const session = await startBenchSession('berth-unpack-bench-');

/** `files` files of a few bytes each (distinct content), 1,000 to a directory: a node_modules-like layer. */
function manyFiles(files: number): TarEntry[] {
  const entries: TarEntry[] = [];
  for (let index = 0; index < files; index += 1) {
    const directory = `many/d${Math.floor(index / FILES_PER_DIRECTORY)}`;
    if (index % FILES_PER_DIRECTORY === 0) entries.push({ name: `${directory}/`, type: 'directory' });
    entries.push({ name: `${directory}/f${index}.txt`, content: `file ${index}\n` });
  }
  return entries;
}

interface Puller {
  name: string;
  pull: CommandLine;
  remove(): Promise<void>;
}

await reportBench('unpack-bench', session, options, async () => {
  session.servers.push(await startBerth(session.workDir));
  const registry = new URL(session.servers[0]!.url).host;
  const agent = await AgentDaemon.start();
  session.teardowns.push(() => agent.destroy());
  const dockerd = await DockerDaemon.start();
  session.teardowns.push(() => dockerd.stop());

  process.stderr.write(`building and pushing an image of one layer of ${options.files} small files ...\n`);
  const reference = `${registry}/bench/many-files:1`;
  const layer = await layerOf(manyFiles(options.files), 'gzip');
  const layout = path.join(session.workDir, 'many-files-layout');
  await writeImageLayout(layout, 'bench', { layers: [layer] });
  await pushLayout(layout, 'bench', reference);

  const pullers: Puller[] = [
    {
      name: 'Berth agent pull',
      pull: agent.cliCommand(['pull', reference]),
      remove: async () => {
        await agent.cli(['rmi', reference]);
        await agent.cli(['prune']);
      },
    },
    {
      name: 'docker pull',
      pull: { file: 'docker', args: ['pull', reference], env: dockerd.cliEnv },
      remove: () => new DockerWorkbench(dockerd, session.workDir).removeLocally(reference),
    },
  ];
  const samples = await alternate(`pull of ${options.files} files`, pullers, options.runs, async (puller) => {
    await run('sync', []);
    const { exitMs } = await timeCommand(puller.pull);
    await puller.remove();
    return exitMs;
  });
  const [berth, docker] = samples as [number[], number[]];
  const rows = berth.map(
    (ms, index) =>
      `| ${index + 1} | ${(ms / 1000).toFixed(2)} s | ${(docker[index]! / 1000).toFixed(2)} s | ${(ms / docker[index]!).toFixed(2)} |`,
  );
  return [
    `pull + unpack of one gzip layer of ${options.files} small files (${(layer.blob.length / 1e6).toFixed(1)} MB compressed) from a Berth registry, interleaved:`,
    '| run | Berth agent | docker | Berth/docker |',
    '|---|---|---|---|',
    ...rows,
  ].join('\n');
});
