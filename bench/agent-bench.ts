#!/usr/bin/env node
/**
 * Side-by-side benchmark of the Berth runtime agent against docker (Debian's dockerd 20.10) and podman/skopeo
 * on this machine: `run --rm IMG echo hi` with the image present, and the pull of a large image from a Berth
 * registry. See bench/README.md ("Runtime agent benchmark"). Not a test: it is not run in CI. Needs root.
 */
import { loadavg } from 'node:os';
import { run } from '../test/helpers/exec.js';
import { parseAgentBenchOptions } from './agent-options.js';
import {
  pullRunsTable,
  pullTable,
  runRoundsTable,
  runTable,
  targetTable,
  type AgentBenchResults,
  type Measured,
  type PullSample,
  type RunSample,
} from './agent-report.js';
import {
  agentPullSubject,
  engineVersions,
  pullEverywhere,
  pullSubjects,
  pushBusyboxImage,
  runSubjects,
  startAgentOfBuild,
  startEngines,
  type PullSubject,
  type Engines,
  type OtherBuildAgent,
  type RunSubject,
} from './container-engines.js';
import { alternate } from './measurements.js';
import { pushRandomLayerImage } from './random-layer-image.js';
import { reportBench, startBenchSession } from './session.js';
import { startBerth } from './servers.js';
import { exitedChildrenCpuSeconds, treeCpuSeconds } from './process-stats.js';
import { timeCommand } from './timed-command.js';

const options = parseAgentBenchOptions(process.argv.slice(2));
const session = await startBenchSession('berth-agent-bench-');
const { workDir, servers } = session;

/** `run --rm IMG echo hi` with every engine, interleaved, after pulling the image everywhere. */
async function measureRuns(engines: Engines, registry: string, other: OtherBuildAgent | undefined): Promise<Measured<RunSample>[]> {
  const runImage = `${registry}/bench/busybox:1`;
  await pushBusyboxImage(engines, workDir, runImage);
  await pullEverywhere(engines, runImage);
  if (other) await other.agent.cli(['pull', runImage]);
  const runners = runSubjects(engines, runImage, other);
  // CPU time: the CLI's (a reaped child of this process) and the daemon's tree (its shims and runc, reaped by it).
  const runOnce = async (subject: RunSubject): Promise<RunSample> => {
    const load = loadavg()[0]!;
    const before = { client: exitedChildrenCpuSeconds(), daemon: subject.daemonPid === undefined ? 0 : treeCpuSeconds(subject.daemonPid) };
    const timing = await timeCommand(subject.command, 'hi\n');
    const daemon = subject.daemonPid === undefined ? 0 : treeCpuSeconds(subject.daemonPid) - before.daemon;
    return { ...timing, cpuMs: (exitedChildrenCpuSeconds() - before.client + daemon) * 1000, load };
  };
  if (options.warmups > 0) await alternate('warm-up: run --rm IMG echo hi', runners, options.warmups, runOnce);
  const samples = await alternate('run --rm IMG echo hi', runners, options.runs, runOnce);
  return runners.map((subject, i) => ({ name: subject.name, role: subject.role, detail: subject.network, samples: samples[i]! }));
}

/** The CPU time of the daemon doing a pull's work (and its helpers), 0 for a daemonless tool. */
const daemonCpuMs = (subject: PullSubject) => (subject.daemonPid === undefined ? 0 : treeCpuSeconds(subject.daemonPid) * 1000);

async function measure(): Promise<{ results: AgentBenchResults; versions: string }> {
  servers.push(await startBerth(workDir));
  const registry = new URL(servers[0]!.url).host;
  const engines = await startEngines(session);
  const versions = await engineVersions(engines);

  const other =
    options.compareBuild === ''
      ? undefined
      : { build: options.compareBuild, agent: await startAgentOfBuild(session, options.compareBuild) };
  const runs = options.pullOnly ? [] : await measureRuns(engines, registry, other);

  process.stderr.write(`building and pushing a ${options.layers}-layer image of random data ...\n`);
  const pullImage = await pushRandomLayerImage(workDir, `${registry}/bench/pull:1`, options.layers, options.layerBytes);
  const pullers = pullSubjects(engines, pullImage, workDir);
  if (other) pullers.splice(1, 0, agentPullSubject(other.agent, `Berth agent pull (${other.build})`, 'other', pullImage));
  const registryPid = servers[0]!.pid;
  // Each pull starts with the previous one's writes on disk, and leaves nothing behind for the next.
  const pullOnce = async (subject: PullSubject): Promise<PullSample> => {
    await run('sync', []);
    const load = loadavg()[0]!;
    const before = {
      client: exitedChildrenCpuSeconds() * 1000,
      daemon: daemonCpuMs(subject),
      registry: treeCpuSeconds(registryPid) * 1000,
    };
    const { exitMs } = await timeCommand(subject.pull);
    const sample = {
      wallMs: exitMs,
      clientCpuMs: exitedChildrenCpuSeconds() * 1000 - before.client,
      daemonCpuMs: daemonCpuMs(subject) - before.daemon,
      registryCpuMs: treeCpuSeconds(registryPid) * 1000 - before.registry,
      load,
    };
    await subject.remove();
    return sample;
  };
  const pullSamples = await alternate(`pull ${pullImage.reference}`, pullers, options.pullRuns, pullOnce);

  return {
    versions,
    results: {
      runs,
      pulls: pullers.map((subject, i) => ({ name: subject.name, role: subject.role, samples: pullSamples[i]! })),
      pullImage: { layers: options.layers, bytes: pullImage.bytes },
    },
  };
}

await reportBench('agent-bench', session, options, async () => {
  const { results, versions } = await measure();
  const runReport = options.pullOnly
    ? []
    : [
        `${options.runs} timed runs per tool after ${options.warmups} warm-ups, interleaved; ms from spawning the CLI:`,
        runTable(results.runs),
        '',
        'Every run: wall ms, CPU ms (CLI + daemon tree, user + system; podman: its CLI only), Berth over each tool in the same round:',
        runRoundsTable(results.runs),
        '',
      ];
  return [
    targetTable(results),
    '',
    ...runReport,
    `${options.pullRuns} pulls per tool from the Berth registry, interleaved, each after removing everything the previous one stored:`,
    pullTable(results),
    '',
    'Every pull: wall and CPU time (CLI + daemon, user + system; the registry apart), the 1-minute load at its start:',
    pullRunsTable(results.pulls),
    '',
    versions,
  ].join('\n');
});
