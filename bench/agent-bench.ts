#!/usr/bin/env node
/**
 * Side-by-side benchmark of the Berth runtime agent against docker (Debian's dockerd 20.10) and podman/skopeo
 * on this machine: `run --rm IMG echo hi` with the image present, and the pull of a large image from a Berth
 * registry. See bench/README.md ("Runtime agent benchmark"). Not a test: it is not run in CI. Needs root.
 */
import { run } from '../test/helpers/exec.js';
import { parseAgentBenchOptions } from './agent-options.js';
import { pullTable, runTable, targetTable, type AgentBenchResults } from './agent-report.js';
import {
  engineVersions,
  pullEverywhere,
  pullSubjects,
  pushBusyboxImage,
  runSubjects,
  startEngines,
  type PullSubject,
  type RunSubject,
} from './container-engines.js';
import { alternate } from './measurements.js';
import { pushRandomLayerImage } from './random-layer-image.js';
import { reportBench, startBenchSession } from './session.js';
import { startBerth } from './servers.js';
import { timeCommand } from './timed-command.js';

const options = parseAgentBenchOptions(process.argv.slice(2));
const session = await startBenchSession('berth-agent-bench-');
const { workDir, servers } = session;

async function measure(): Promise<{ results: AgentBenchResults; versions: string }> {
  servers.push(await startBerth(workDir));
  const registry = new URL(servers[0]!.url).host;
  const engines = await startEngines(session);
  const versions = await engineVersions(engines);

  const runImage = `${registry}/bench/busybox:1`;
  await pushBusyboxImage(engines, workDir, runImage);
  await pullEverywhere(engines, runImage);
  const runners = runSubjects(engines, runImage);
  const runOnce = (subject: RunSubject) => timeCommand(subject.command, 'hi\n');
  if (options.warmups > 0) await alternate('warm-up: run --rm IMG echo hi', runners, options.warmups, runOnce);
  const runSamples = await alternate('run --rm IMG echo hi', runners, options.runs, runOnce);

  process.stderr.write(`building and pushing a ${options.layers}-layer image of random data ...\n`);
  const pullImage = await pushRandomLayerImage(workDir, `${registry}/bench/pull:1`, options.layers, options.layerBytes);
  const pullers = pullSubjects(engines, pullImage, workDir);
  // Each pull starts with the previous one's writes on disk, and leaves nothing behind for the next.
  const pullOnce = async (subject: PullSubject) => {
    await run('sync', []);
    const { exitMs } = await timeCommand(subject.pull);
    await subject.remove();
    return { pullMs: exitMs };
  };
  const pullSamples = await alternate(`pull ${pullImage.reference}`, pullers, options.pullRuns, pullOnce);

  return {
    versions,
    results: {
      runs: runners.map((subject, i) => ({ name: subject.name, role: subject.role, detail: subject.network, samples: runSamples[i]! })),
      pulls: pullers.map((subject, i) => ({
        name: subject.name,
        role: subject.role,
        samples: pullSamples[i]!.map((sample) => sample.pullMs),
      })),
      pullImage: { layers: options.layers, bytes: pullImage.bytes },
    },
  };
}

await reportBench('agent-bench', session, options, async () => {
  const { results, versions } = await measure();
  return [
    targetTable(results),
    '',
    `${options.runs} timed runs per tool after ${options.warmups} warm-ups, interleaved; ms from spawning the CLI:`,
    runTable(results.runs),
    '',
    `${options.pullRuns} pulls per tool from the Berth registry, interleaved, each after removing everything the previous one stored:`,
    pullTable(results),
    '',
    versions,
  ].join('\n');
});
