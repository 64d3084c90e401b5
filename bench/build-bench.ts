#!/usr/bin/env node
/**
 * Image builds side by side: docker's BuildKit (dockerd 20.10), `buildah bud --layers` and, once it exists,
 * `berth-agent build`, on one multi-stage Dockerfile with several RUN steps and a generated context of a few
 * thousand files. Per run and tool: a cold build (--no-cache), a rebuild with nothing changed, a rebuild after
 * one source file changed; for Berth also a cold build on a second agent with the cache in the registry.
 * See bench/README.md ("Image builds"). Not a test: CI does not run it. Needs root.
 *
 *   node dist/bench/build-bench.js [--files 3000] [--runs 3]
 */
import { cp, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { AgentDaemon } from '../test/helpers/agent-daemon.js';
import { buildah, buildFlags, type BuildRequest } from '../test/helpers/docker-build.js';
import { DockerDaemon } from '../test/helpers/dockerd.js';
import { DockerWorkbench } from '../test/helpers/docker-workbench.js';
import { run } from '../test/helpers/exec.js';
import { PodmanEnvironment } from '../test/helpers/podman.js';
import { alternate } from './measurements.js';
import { alignColumns, formatNumber } from './report.js';
import { startBerth } from './servers.js';
import { reportBench, startBenchSession } from './session.js';
import { timeCommand, type CommandLine } from './timed-command.js';

const { values } = parseArgs({ options: { files: { type: 'string', default: '3000' }, runs: { type: 'string', default: '3' } } });
const options = { files: Number(values.files), runs: Number(values.runs) };
const FILES_PER_DIRECTORY = 100;
const BASE_IMAGE = 'berth.test/busybox:base';

// Dependencies, then a build stage over the sources, then a small runtime stage: the shape of most app images.
const DOCKERFILE = `ARG BASE
FROM \${BASE} AS deps
WORKDIR /app
COPY deps.txt ./
RUN mkdir -p deps && for i in $(seq 1 300); do echo "dependency $i" > deps/$i.txt; done
RUN tar -cf deps.tar deps && rm -rf deps

FROM deps AS build
COPY src ./src
RUN find src -type f | sort | xargs cat | sha256sum > bundle.sha
RUN mkdir -p out && cp bundle.sha out/ && find src -type f | wc -l > out/count && tar -cf out/src.tar src

FROM \${BASE}
COPY --from=build /app/out /app
RUN echo ready > /app/ready
CMD ["cat", "/app/bundle.sha"]
`;

const session = await startBenchSession('berth-build-bench-');

/** The Dockerfile, a dependency list and `files` small source files, 100 to a directory. */
async function writeContext(dir: string, files: number): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'Dockerfile'), DOCKERFILE);
  await writeFile(path.join(dir, 'deps.txt'), 'left-pad 1.3.0\n');
  await writeFile(path.join(dir, '.dockerignore'), '*.log\n');
  for (let index = 0; index < files; index += 1) {
    const directory = path.join(dir, 'src', `module${Math.floor(index / FILES_PER_DIRECTORY)}`);
    if (index % FILES_PER_DIRECTORY === 0) await mkdir(directory, { recursive: true });
    await writeFile(path.join(directory, `file${index}.js`), `export const value${index} = ${index};\n`);
  }
}

/** A changed source file: the build reruns from `COPY src` on. */
function touchSource(context: string, round: number): Promise<void> {
  return writeFile(path.join(context, 'src', 'module0', 'file0.js'), `export const value0 = ${round + 1}; // changed\n`);
}

interface Scenario {
  cold: number;
  unchanged: number;
  changed: number;
  /** Berth only: a fresh agent whose cache comes from the registry. */
  secondAgent?: number;
}

interface Tool {
  name: string;
  /** Its own copy of the context: one tool's source change must not be another's. */
  context: string;
  /** `exportCache`: Berth exports its cache to the registry (the build before the second agent's only, so the other builds compare like with like). */
  build(noCache: boolean, exportCache: boolean): CommandLine;
  /** Berth only. */
  secondAgent?: () => Promise<number>;
}

function requestFor(context: string, tag: string, base: string): BuildRequest {
  return { context, dockerfile: 'Dockerfile', tag, target: undefined, buildArgs: { BASE: base } };
}

async function dockerTool(source: string): Promise<Tool> {
  const dockerd = await DockerDaemon.start();
  session.teardowns.push(() => dockerd.stop());
  await dockerd.docker(['tag', await new DockerWorkbench(dockerd, session.workDir).importBusybox('build-bench'), BASE_IMAGE]);
  const context = path.join(session.workDir, 'context-docker');
  await cp(source, context, { recursive: true });
  await dockerd.docker(['save', '--output', path.join(session.workDir, 'base.tar'), BASE_IMAGE]);
  const flags = buildFlags(requestFor(context, 'bench/app:docker', BASE_IMAGE));
  return {
    name: 'docker BuildKit',
    context,
    build: (noCache) => ({
      file: '/usr/bin/docker',
      args: ['build', '--quiet', '--network=none', ...(noCache ? ['--no-cache'] : []), ...flags],
      env: { ...dockerd.cliEnv, DOCKER_BUILDKIT: '1' },
    }),
  };
}

async function buildahTool(source: string): Promise<Tool> {
  const podman = await PodmanEnvironment.create();
  session.teardowns.push(() => podman.destroy());
  const pulled = await buildah(podman, ['pull', '--quiet', `docker-archive:${path.join(session.workDir, 'base.tar')}`]);
  if (pulled.code !== 0) throw new Error(`buildah pull failed: ${pulled.stderr}`);
  const context = path.join(session.workDir, 'context-buildah');
  await cp(source, context, { recursive: true });
  const flags = buildFlags(requestFor(context, 'bench/app:buildah', BASE_IMAGE));
  return {
    name: 'buildah bud --layers',
    context,
    build: (noCache) => ({
      file: 'buildah',
      args: [
        'bud',
        '--quiet',
        '--layers',
        '--runtime',
        'runc',
        '--network=none',
        '--pull=never',
        ...(noCache ? ['--no-cache'] : []),
        ...flags,
      ],
      env: podman.env,
    }),
  };
}

/** Two agents and a Berth registry: the base image and, after each build on the first agent, its cache. */
async function berthTool(source: string): Promise<Tool> {
  const registry = await startBerth(session.workDir);
  session.servers.push(registry);
  const host = new URL(registry.url).host;
  const base = `${host}/bench/busybox:base`;
  await run('skopeo', [
    'copy',
    '--quiet',
    '--dest-tls-verify=false',
    `docker-archive:${path.join(session.workDir, 'base.tar')}`,
    `docker://${base}`,
  ]);
  const agent = await AgentDaemon.start(['--insecure-registry', host]);
  session.teardowns.push(() => agent.destroy());
  const context = path.join(session.workDir, 'context-berth');
  await cp(source, context, { recursive: true });
  const cacheRef = `${host}/bench/app-cache:build`;
  const flags = buildFlags(requestFor(context, 'bench/app:berth', base));
  return {
    name: 'Berth agent',
    context,
    build: (noCache, exportCache) =>
      agent.cliCommand([
        'build',
        '--network=none',
        ...(exportCache ? ['--cache-to', cacheRef] : []),
        ...(noCache ? ['--no-cache'] : []),
        ...flags,
      ]),
    secondAgent: async () => {
      const second = await AgentDaemon.start(['--insecure-registry', host]);
      try {
        return (await timeCommand(second.cliCommand(['build', '--network=none', '--cache-from', cacheRef, ...flags]))).exitMs;
      } finally {
        await second.destroy();
      }
    },
  };
}

async function measure(tool: Tool, round: number): Promise<Scenario> {
  const cold = (await timeCommand(tool.build(true, false))).exitMs;
  const unchanged = (await timeCommand(tool.build(false, false))).exitMs;
  await touchSource(tool.context, round);
  const changed = (await timeCommand(tool.build(false, true))).exitMs;
  const secondAgent = tool.secondAgent ? await tool.secondAgent() : undefined;
  return { cold, unchanged, changed, ...(secondAgent === undefined ? {} : { secondAgent }) };
}

const SCENARIOS: Array<{ key: keyof Scenario; label: string }> = [
  { key: 'cold', label: 'cold build (--no-cache)' },
  { key: 'unchanged', label: 'rebuild, nothing changed' },
  { key: 'changed', label: 'rebuild, one source file changed' },
  { key: 'secondAgent', label: 'cold build on a second agent, cache from the registry' },
];

/** One row per run and scenario: every tool's seconds, and each one's ratio to the fastest of the others. */
function table(tools: Tool[], samples: Scenario[][]): string {
  const header = ['scenario', 'run', ...tools.map((tool) => `${tool.name} s`), ...tools.map((tool) => `${tool.name} / fastest other`)];
  const body: string[][] = [];
  for (const { key, label } of SCENARIOS) {
    for (let round = 0; round < options.runs; round += 1) {
      const seconds = samples.map((perTool) => (perTool[round]?.[key] ?? Number.NaN) / 1000);
      if (seconds.every((value) => Number.isNaN(value))) continue;
      const ratios = seconds.map((value, index) => {
        const others = seconds.filter((other, otherIndex) => otherIndex !== index && !Number.isNaN(other));
        return others.length === 0 || Number.isNaN(value) ? 'n/a' : `${formatNumber(value / Math.min(...others))}x`;
      });
      body.push([label, String(round + 1), ...seconds.map(formatNumber), ...ratios]);
    }
  }
  return alignColumns(header, body, (column) => column >= 1);
}

await reportBench('build-bench', session, options, async () => {
  const source = path.join(session.workDir, 'context');
  await writeContext(source, options.files);
  // docker's tool saves the base image that the other two import.
  const docker = await dockerTool(source);
  const tools = [await berthTool(source), docker, await buildahTool(source)];
  const samples = await alternate(`builds of ${options.files} files`, tools, options.runs, measure);
  return [
    `multi-stage Dockerfile, 5 RUN steps, a context of ${options.files} source files; seconds per build, every run:`,
    table(tools, samples),
  ].join('\n');
});
