import test from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { InspectResult } from '../../runtime-agent/api.js';
import { formatGoDuration, parseGoDuration } from '../../platform/go-duration.js';
import { AgentDaemon } from '../helpers/agent-daemon.js';
import { agentApi } from '../helpers/agent-api.js';
import { busyboxEntries, layerOf, pushLayout, writeImageLayout } from '../helpers/agent-images.js';
import { eventually } from '../helpers/eventually.js';
import { RegistryProcess } from '../helpers/registry-process.js';

/**
 * Health checks as docker runs them, through real runc: an image whose config has a HEALTHCHECK (probing
 * every 200 ms), the --health-* flags over it, and the state across a daemon SIGKILL.
 */

const MS = 1_000_000;
/** The image's check: healthy once the test has created /tmp/ready in the container; a 30 s start period. */
const IMAGE_HEALTHCHECK = {
  Test: ['CMD-SHELL', 'cat /tmp/ready'],
  Interval: 200 * MS,
  Timeout: 10_000 * MS,
  StartPeriod: 30_000 * MS,
  StartInterval: 200 * MS,
  Retries: 3,
};

let registry: RegistryProcess;
let agent: AgentDaemon;
let workDir: string;
let image: string;

test.before(async () => {
  workDir = await mkdtemp(path.join(tmpdir(), 'berth-health-'));
  [registry, agent] = await Promise.all([RegistryProcess.start(), AgentDaemon.start()]);
  const layout = path.join(workDir, 'layout');
  await writeImageLayout(layout, 'v1', {
    layers: [await layerOf(await busyboxEntries(['sh', 'sleep', 'cat', 'echo', 'ps', 'grep']), 'gzip')],
    config: {
      Env: ['PATH=/bin'],
      Cmd: ['sh', '-c', 'while true; do sleep 0.1; done'],
      Healthcheck: IMAGE_HEALTHCHECK,
    },
  });
  image = `${registry.host}/health/probe:v1`;
  await pushLayout(layout, 'v1', image);
  await agent.cli(['pull', image]);
});

test.after.always(async () => {
  await agent?.destroy();
  await registry?.destroy();
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

async function inspect(container: string): Promise<InspectResult> {
  const { status, body } = await agentApi<InspectResult>(agent, 'GET', `/v1/containers/${container}`);
  if (status !== 200) throw new Error(`inspect ${container} answered ${status}: ${JSON.stringify(body)}`);
  return body;
}

async function psStatus(name: string): Promise<string> {
  const { stdout } = await agent.cli(['ps', '--no-trunc']);
  const line = stdout.split('\n').find((row) => row.trimEnd().endsWith(` ${name}`)) ?? '';
  return /\s{2,}(Up [^\n]*?)\s{2,}/.exec(line)?.[1] ?? `no line for ${name} in:\n${stdout}`;
}

async function runDetached(name: string, flags: string[]): Promise<string> {
  return (await agent.cli(['run', '-d', '--network', 'none', '--name', name, ...flags, image])).stdout.trim();
}

test('Go durations are read and written as docker does', (t) => {
  t.deepEqual(parseGoDuration('200ms'), { nanoseconds: 200 * MS });
  t.deepEqual(parseGoDuration('1m30s'), { nanoseconds: 90_000 * MS });
  t.deepEqual(parseGoDuration('1.5h'), { nanoseconds: 5400_000 * MS });
  t.deepEqual(parseGoDuration('30'), { error: 'time: missing unit in duration "30"' });
  t.deepEqual(parseGoDuration('soon'), { error: 'time: invalid duration "soon"' });
  t.is(formatGoDuration(300 * MS), '300ms');
  t.is(formatGoDuration(30_000 * MS), '30s');
  t.is(formatGoDuration(120_000 * MS), '2m0s');
  t.is(formatGoDuration(1500 * MS), '1.5s');
});

test.serial("an image's HEALTHCHECK goes from starting to healthy: failures in the start period do not count", async (t) => {
  const id = await runDetached('good', []);
  t.regex(await psStatus('good'), /^Up .* \(health: starting\)$/);
  const starting = await inspect(id);
  t.is(starting.State.Health?.Status, 'starting');
  t.is(starting.State.Health?.FailingStreak, 0);
  t.deepEqual(starting.Config.Healthcheck, IMAGE_HEALTHCHECK);
  const failing = await eventually(
    () => inspect(id),
    (result) => (result.State.Health?.Log.length ?? 0) >= 4,
    10_000,
  );
  t.is(failing.State.Health?.Status, 'starting', 'failures within the start period do not count');
  t.is(failing.State.Health?.FailingStreak, 0);
  t.regex(await psStatus('good'), /^Up .* \(health: starting\)$/);

  await agent.cli(['exec', 'good', 'sh', '-c', 'echo ok > /tmp/ready']);
  const healthy = await eventually(
    () => inspect(id),
    (result) => result.State.Health?.Status === 'healthy',
    10_000,
  );
  const health = healthy.State.Health!;
  t.is(health.FailingStreak, 0);
  t.is(health.Log.length, 5, 'the log keeps the last 5 results');
  const failures = health.Log.filter((entry) => entry.ExitCode !== 0);
  t.true(failures.length > 0, 'the probes before /tmp/ready failed, within the start period');
  t.true(failures.every((entry) => /No such file or directory/.test(entry.Output)));
  const last = health.Log.at(-1)!;
  t.is(last.ExitCode, 0);
  t.is(last.Output, 'ok\n');
  t.true(Date.parse(last.End) >= Date.parse(last.Start));
  t.regex(await psStatus('good'), /^Up .* \(healthy\)$/);
});

test.serial(
  'a failing check goes unhealthy after --health-retries; the flags override the image field by field; no restart for it',
  async (t) => {
    const id = await runDetached('sick', [
      '--health-cmd',
      'echo sick; exit 1',
      '--health-retries',
      '2',
      '--health-start-period',
      '1ms',
      '--restart',
      'always',
    ]);
    t.deepEqual((await inspect(id)).Config.Healthcheck, {
      ...IMAGE_HEALTHCHECK,
      Test: ['CMD-SHELL', 'echo sick; exit 1'],
      StartPeriod: MS,
      Retries: 2,
    });
    const seen: Array<{ status: string; streak: number }> = [];
    await eventually(
      async () => {
        const health = (await inspect(id)).State.Health;
        if (health) seen.push({ status: health.Status, streak: health.FailingStreak });
        return health;
      },
      (health) => health?.Status === 'unhealthy',
      10_000,
    );
    for (const { status, streak } of seen) t.is(status, streak >= 2 ? 'unhealthy' : 'starting', `status at streak ${streak}`);
    const health = (await inspect(id)).State.Health!;
    t.deepEqual(
      health.Log.map((entry) => [entry.ExitCode, entry.Output]),
      health.Log.map(() => [1, 'sick\n']),
    );
    await sleep(1000);
    const later = await inspect(id);
    t.true(later.State.Running, 'an unhealthy container keeps running, whatever its restart policy');
    t.is(later.RestartCount, 0);
    t.regex(await psStatus('sick'), /^Up .* \(unhealthy\)$/);
  },
);

test.serial('a probe that hangs is killed at --health-timeout and counts as a failure', async (t) => {
  const id = await runDetached('hung', [
    '--health-cmd',
    'echo begun; sleep 47',
    '--health-timeout',
    '1s',
    '--health-retries',
    '1',
    '--health-start-period',
    '1ms',
    '--health-interval',
    '1s',
  ]);
  const result = await eventually(
    () => inspect(id),
    (inspected) => (inspected.State.Health?.Log.length ?? 0) > 0,
    10_000,
  );
  const health = result.State.Health!;
  const [entry] = health.Log;
  t.is(entry?.ExitCode, -1);
  // What the probe printed comes after the message; a runc exec slowed down by load may not have started it yet.
  t.regex(entry?.Output ?? '', /^Health check exceeded timeout \(1s\)(: begun\n)?$/);
  const tookMs = Date.parse(entry!.End) - Date.parse(entry!.Start);
  t.true(tookMs >= 1000 && tookMs < 4000, `the probe ended after ${tookMs} ms`);
  t.is(health.Status, 'unhealthy');
  t.is(health.FailingStreak, 1);
  await eventually(
    () => inspect(id),
    (inspected) => (inspected.State.Health?.Log.length ?? 0) >= 3,
    10_000,
  );
  const { stdout } = await agent.cli(['exec', 'hung', 'ps']);
  const left = stdout.split('\n').filter((line) => line.includes('sleep 47'));
  t.true(left.length <= 1, `the timed-out probes were killed in the container, at most the current one runs:\n${stdout}`);
});

test.serial('--no-healthcheck disables the image HEALTHCHECK: no State.Health, a plain Up', async (t) => {
  const id = await runDetached('unchecked', ['--no-healthcheck']);
  await sleep(800);
  const result = await inspect(id);
  t.is(result.State.Health, undefined);
  t.deepEqual(result.Config.Healthcheck, { ...IMAGE_HEALTHCHECK, Test: ['NONE'] }, "docker's merge: the image's durations stay");
  t.regex(await psStatus('unchecked'), /^Up [^()]*$/);
  const conflict = await agent.cli(['run', '-d', '--no-healthcheck', '--health-retries', '2', image], { allowFailure: true });
  t.is(conflict.code, 1);
  t.regex(conflict.stderr, /--no-healthcheck conflicts with --health-\* options/);
  const badDuration = await agent.cli(['run', '-d', '--health-interval', '30', image], { allowFailure: true });
  t.regex(badDuration.stderr, /invalid argument "30" for "--health-interval" flag: time: missing unit in duration "30"/);
});

test.serial('after an agent SIGKILL and restart the status, failing streak and log continue and probing resumes', async (t) => {
  const before = (await inspect('sick')).State.Health!;
  const healthyBefore = (await inspect('good')).State.Health!;
  t.is(before.Status, 'unhealthy');
  const killedAt = Date.now();
  await agent.killAndRestart();
  const restartedAt = Date.now();
  const after = (await inspect('sick')).State.Health!;
  t.is(after.Status, 'unhealthy', 'not reset to starting');
  t.true(after.FailingStreak >= before.FailingStreak);
  const kept = after.Log.filter((entry) => Date.parse(entry.Start) < killedAt);
  t.true(kept.length >= 3, `the log from before the restart is kept: ${JSON.stringify(after.Log)}`);
  t.is((await inspect('good')).State.Health?.Status, healthyBefore.Status);
  const resumed = await eventually(
    () => inspect('sick'),
    (inspected) => Date.parse(inspected.State.Health?.Log.at(-1)?.Start ?? '') > restartedAt,
    30_000,
  );
  t.true(resumed.State.Health!.FailingStreak > after.FailingStreak, 'the streak goes on counting');
  t.regex(await psStatus('good'), /^Up .* \(healthy\)$/);
});
