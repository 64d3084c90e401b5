#!/usr/bin/env node
/**
 * Image builds side by side: docker's BuildKit (dockerd 20.10), `buildah bud --layers` and `berth-agent build`.
 * Scenario `builds`: one multi-stage Dockerfile with several RUN steps and a generated context of a few thousand
 * files; per run and tool a cold build (--no-cache), a rebuild with nothing changed, a rebuild after one source
 * file changed; for Berth also a cold build on a second agent with the cache in the registry, and the
 * nothing-changed rebuild sent straight to the daemon's API (its share, without the CLI's start). Scenario
 * `steps`: what a RUN step costs besides its command, from cold builds of 1 and of `--steps` trivial RUN steps.
 * See bench/README.md ("Image builds"). Not a test: CI does not run it. Needs root.
 *
 *   node dist/bench/build-bench.js [--files 3000] [--runs 3] [--steps 11] [--scenarios builds,steps]
 *                                  [--compare-build <dist directory>]
 *
 * `--compare-build` adds a Berth built from another copy of this repository (e.g. main's `dist`), its builds
 * interleaved with this one's in every run: an A/B of the builder's code.
 */
import { cp, mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Readable } from 'node:stream';
import { parseArgs } from 'node:util';
import type { BuildOptions } from '../runtime-agent/build/build-api.js';
import type { BuildEvent } from '../runtime-agent/build/build-progress.js';
import { AgentClient } from '../runtime-agent/client/agent-client.js';
import { AgentDaemon } from '../test/helpers/agent-daemon.js';
import { buildah, buildFlags, type BuildRequest } from '../test/helpers/docker-build.js';
import { DockerDaemon } from '../test/helpers/dockerd.js';
import { DockerWorkbench } from '../test/helpers/docker-workbench.js';
import { run } from '../test/helpers/exec.js';
import { PodmanEnvironment } from '../test/helpers/podman.js';
import { agentOfBuild } from './container-engines.js';
import { alternate } from './measurements.js';
import { exitedChildrenCpuSeconds, treeCpuSeconds } from './process-stats.js';
import { alignColumns, formatNumber } from './report.js';
import { startBerth } from './servers.js';
import { reportBench, startBenchSession } from './session.js';
import { timeCommand, type CommandLine } from './timed-command.js';

const { values } = parseArgs({
  options: {
    files: { type: 'string', default: '3000' },
    runs: { type: 'string', default: '3' },
    steps: { type: 'string', default: '11' },
    scenarios: { type: 'string', default: 'builds,steps' },
    'compare-build': { type: 'string', default: '' },
  },
});
const options = {
  files: Number(values.files),
  runs: Number(values.runs),
  steps: Number(values.steps),
  scenarios: values.scenarios.split(','),
  compareBuild: values['compare-build'],
};
for (const scenario of options.scenarios)
  if (scenario !== 'builds' && scenario !== 'steps') throw new Error(`unknown scenario ${scenario}: builds or steps`);
if (!(options.steps >= 2)) throw new Error('--steps must be 2 or more');
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

/** `count` RUN steps whose commands cost next to nothing: what is left is each builder's own cost per step. */
function trivialSteps(count: number): string {
  const steps = Array.from({ length: count }, (_, index) => `RUN echo step ${index + 1}\n`).join('');
  return `ARG BASE\nFROM \${BASE}\n${steps}`;
}

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
  await writeFile(path.join(dir, 'Dockerfile.one-step'), trivialSteps(1));
  await writeFile(path.join(dir, 'Dockerfile.many-steps'), trivialSteps(options.steps));
}

/** A changed source file: the build reruns from `COPY src` on. */
function touchSource(context: string, round: number): Promise<void> {
  return writeFile(path.join(context, 'src', 'module0', 'file0.js'), `export const value0 = ${round + 1}; // changed\n`);
}

interface Scenario {
  cold: number;
  /** CPU time of the build: the tool's service (daemon and what it ran) and its command line, user + system. */
  coldCpu: number;
  unchanged: number;
  unchangedCpu: number;
  /** Berth only: the nothing-changed rebuild through the daemon's API from this process, no CLI start. */
  unchangedDaemon?: number;
  changed: number;
  changedCpu: number;
  /** Berth only: a fresh agent whose cache comes from the registry. */
  secondAgent?: number;
}

interface StepCost {
  oneStep: number;
  manySteps: number;
  /** (manySteps - oneStep) / (steps - 1). */
  perStep: number;
}

type Dockerfile = 'Dockerfile' | 'Dockerfile.one-step' | 'Dockerfile.many-steps';

interface Tool {
  name: string;
  /** Its own copy of the context: one tool's source change must not be another's. */
  context: string;
  /** The daemon that does the builds (Berth's agent, dockerd with its BuildKit); none for buildah. */
  servicePid: number | undefined;
  /** `exportCache`: Berth exports its cache to the registry (the build before the second agent's only, so the other builds compare like with like). */
  build(dockerfile: Dockerfile, noCache: boolean, exportCache: boolean): CommandLine;
  /** Berth only. */
  secondAgent?: () => Promise<number>;
  /** Berth only: the build sent by this process to the daemon's socket, as the CLI sends it; milliseconds to its last event. */
  daemonBuild?: () => Promise<number>;
}

function requestFor(context: string, dockerfile: Dockerfile, tag: string, base: string): BuildRequest {
  return { context, dockerfile, tag, target: undefined, buildArgs: { BASE: base } };
}

async function dockerTool(source: string): Promise<Tool> {
  const dockerd = await DockerDaemon.start();
  session.teardowns.push(() => dockerd.stop());
  await dockerd.docker(['tag', await new DockerWorkbench(dockerd, session.workDir).importBusybox('build-bench'), BASE_IMAGE]);
  const context = path.join(session.workDir, 'context-docker');
  await cp(source, context, { recursive: true });
  await dockerd.docker(['save', '--output', path.join(session.workDir, 'base.tar'), BASE_IMAGE]);
  return {
    name: 'docker BuildKit',
    context,
    servicePid: dockerd.pid,
    build: (dockerfile, noCache) => ({
      file: '/usr/bin/docker',
      args: [
        'build',
        '--quiet',
        '--network=none',
        ...(noCache ? ['--no-cache'] : []),
        ...buildFlags(requestFor(context, dockerfile, 'bench/app:docker', BASE_IMAGE)),
      ],
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
  return {
    name: 'buildah bud --layers',
    context,
    servicePid: undefined,
    build: (dockerfile, noCache) => ({
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
        ...buildFlags(requestFor(context, dockerfile, 'bench/app:buildah', BASE_IMAGE)),
      ],
      env: podman.env,
    }),
  };
}

/**
 * Two agents and a Berth registry: the base image and, after each build on the first agent, its cache.
 * `Agent` starts this build's daemons, or another build's (`--compare-build`).
 */
async function berthTool(source: string, name: string, Agent: typeof AgentDaemon): Promise<Tool> {
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
  const agent = await Agent.start(['--insecure-registry', host]);
  session.teardowns.push(() => agent.destroy());
  const context = await mkdtemp(path.join(session.workDir, 'context-berth-'));
  await cp(source, context, { recursive: true });
  const cacheRef = `${host}/bench/app-cache:build`;
  const flags = (dockerfile: Dockerfile) => buildFlags(requestFor(context, dockerfile, 'bench/app:berth', base));
  return {
    name,
    context,
    servicePid: agent.pid,
    build: (dockerfile, noCache, exportCache) =>
      agent.cliCommand([
        'build',
        '--network=none',
        ...(exportCache ? ['--cache-to', cacheRef] : []),
        ...(noCache ? ['--no-cache'] : []),
        ...flags(dockerfile),
      ]),
    secondAgent: async () => {
      const second = await Agent.start(['--insecure-registry', host]);
      try {
        return (await timeCommand(second.cliCommand(['build', '--network=none', '--cache-from', cacheRef, ...flags('Dockerfile')]))).exitMs;
      } finally {
        await second.destroy();
      }
    },
    daemonBuild: () => daemonBuild(new AgentClient(path.join(agent.dataDir, 'agent.sock')), context, base),
  };
}

/** What `berth-agent build --network=none -t bench/app:berth` sends for a context directory on the daemon's host. */
async function daemonBuild(client: AgentClient, context: string, base: string): Promise<number> {
  const request: BuildOptions = {
    dockerfile: { content: DOCKERFILE, path: 'Dockerfile' },
    contextPath: context,
    tags: ['bench/app:berth'],
    buildArgs: { BASE: base },
    network: 'none',
  };
  const started = performance.now();
  const last = await client.build<BuildEvent>(request, Readable.from([]), () => undefined);
  if (last?.type !== 'done') throw new Error(`the daemon's build failed: ${JSON.stringify(last)}`);
  return performance.now() - started;
}

/**
 * A build's wall time and CPU time in milliseconds. The CPU time is the service's (its process tree's, the
 * children it reaped included) and the command's own with its children's: much less disturbed by other load
 * on the machine than the wall time, it shows whether a change saved work.
 */
async function timedBuild(tool: Tool, command: CommandLine): Promise<{ wallMs: number; cpuMs: number }> {
  const cpu = () => (tool.servicePid === undefined ? 0 : treeCpuSeconds(tool.servicePid)) + exitedChildrenCpuSeconds();
  const before = cpu();
  const { exitMs } = await timeCommand(command);
  return { wallMs: exitMs, cpuMs: (cpu() - before) * 1000 };
}

async function measure(tool: Tool, round: number): Promise<Scenario> {
  const cold = await timedBuild(tool, tool.build('Dockerfile', true, false));
  const unchanged = await timedBuild(tool, tool.build('Dockerfile', false, false));
  const unchangedDaemon = tool.daemonBuild ? await tool.daemonBuild() : undefined;
  await touchSource(tool.context, round);
  const changed = await timedBuild(tool, tool.build('Dockerfile', false, true));
  const secondAgent = tool.secondAgent ? await tool.secondAgent() : undefined;
  return {
    cold: cold.wallMs,
    coldCpu: cold.cpuMs,
    unchanged: unchanged.wallMs,
    unchangedCpu: unchanged.cpuMs,
    ...(unchangedDaemon === undefined ? {} : { unchangedDaemon }),
    changed: changed.wallMs,
    changedCpu: changed.cpuMs,
    ...(secondAgent === undefined ? {} : { secondAgent }),
  };
}

async function measureSteps(tool: Tool): Promise<StepCost> {
  const oneStep = (await timeCommand(tool.build('Dockerfile.one-step', true, false))).exitMs;
  const manySteps = (await timeCommand(tool.build('Dockerfile.many-steps', true, false))).exitMs;
  return { oneStep, manySteps, perStep: (manySteps - oneStep) / (options.steps - 1) };
}

const SCENARIOS: Array<{ key: keyof Scenario; label: string }> = [
  { key: 'cold', label: 'cold build (--no-cache)' },
  { key: 'coldCpu', label: 'cold build, CPU time (service + command)' },
  { key: 'unchanged', label: 'rebuild, nothing changed' },
  { key: 'unchangedCpu', label: 'rebuild, nothing changed, CPU time' },
  { key: 'unchangedDaemon', label: 'rebuild, nothing changed, daemon only (API, no CLI start)' },
  { key: 'changed', label: 'rebuild, one source file changed' },
  { key: 'changedCpu', label: 'rebuild, one source file changed, CPU time' },
  { key: 'secondAgent', label: 'cold build on a second agent, cache from the registry' },
];

const STEP_COLUMNS: Array<{ key: keyof StepCost; label: string }> = [
  { key: 'oneStep', label: '1 RUN step, s' },
  { key: 'manySteps', label: `${options.steps} RUN steps, s` },
  { key: 'perStep', label: 'per extra RUN step, s' },
];

/** Each tool's figure for `value` in one run, and its ratio to the fastest of the other tools' (n/a when alone). */
function row(label: string, round: number, seconds: number[]): string[] {
  const ratios = seconds.map((value, index) => {
    const others = seconds.filter((other, otherIndex) => otherIndex !== index && !Number.isNaN(other));
    return others.length === 0 || Number.isNaN(value) ? 'n/a' : `${formatNumber(value / Math.min(...others))}x`;
  });
  return [label, String(round + 1), ...seconds.map(formatNumber), ...ratios];
}

/** One row per run and figure: every tool's seconds, and each one's ratio to the fastest of the others. */
function table<T extends object>(tools: Tool[], samples: T[][], figures: Array<{ key: keyof T; label: string }>): string {
  const header = ['figure', 'run', ...tools.map((tool) => `${tool.name} s`), ...tools.map((tool) => `${tool.name} / fastest other`)];
  const body: string[][] = [];
  for (const { key, label } of figures) {
    for (let round = 0; round < options.runs; round += 1) {
      const seconds = samples.map((perTool) => ((perTool[round]?.[key] as number | undefined) ?? Number.NaN) / 1000);
      if (!seconds.every((value) => Number.isNaN(value))) body.push(row(label, round, seconds));
    }
  }
  return alignColumns(header, body, (column) => column >= 1);
}

await reportBench('build-bench', session, options, async () => {
  const source = path.join(session.workDir, 'context');
  await writeContext(source, options.files);
  // docker's tool saves the base image that the other two import.
  const docker = await dockerTool(source);
  const berth = await berthTool(source, 'Berth agent', AgentDaemon);
  const compared =
    options.compareBuild === ''
      ? []
      : [await berthTool(source, `Berth (${options.compareBuild})`, await agentOfBuild(options.compareBuild))];
  const tools = [berth, ...compared, docker, await buildahTool(source)];
  const report: string[] = [];
  if (options.scenarios.includes('steps')) {
    const steps = await alternate(`1 and ${options.steps} trivial RUN steps`, tools, options.runs, measureSteps);
    report.push(
      `cold builds of \`FROM busybox\` and 1 or ${options.steps} \`RUN echo\` steps; seconds, every run:`,
      table(tools, steps, STEP_COLUMNS),
    );
  }
  if (options.scenarios.includes('builds')) {
    const builds = await alternate(`builds of ${options.files} files`, tools, options.runs, measure);
    report.push(
      `multi-stage Dockerfile, 5 RUN steps, a context of ${options.files} source files; seconds per build, every run:`,
      table(tools, builds, SCENARIOS),
    );
  }
  return report.join('\n');
});
