import test from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { InspectResult } from '../../runtime-agent/api.js';
import { AgentDaemon } from '../helpers/agent-daemon.js';
import { eventually } from '../helpers/eventually.js';
import { agentApi, agentStream } from '../helpers/agent-api.js';
import { busyboxEntries, layerOf, pushLayout, writeImageLayout } from '../helpers/agent-images.js';
import { RegistryProcess } from '../helpers/registry-process.js';

/**
 * The agent's events in docker's shapes, from real containers: `events --since` replaying the kept history
 * (also after a daemon SIGKILL), its filters and formats, and the live stream of the API.
 */

const TIMESTAMP = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}(Z|[+-]\d\d:\d\d)$/;

let registry: RegistryProcess;
let agent: AgentDaemon;
let workDir: string;
let image: string;
let since: string;

async function pushImage(name: string, entries: Parameters<typeof layerOf>[0]): Promise<string> {
  const layout = path.join(workDir, name);
  await writeImageLayout(layout, 'v1', { layers: [await layerOf(entries, 'gzip')], config: { Env: ['PATH=/bin'] } });
  const reference = `${registry.host}/events/${name}:v1`;
  await pushLayout(layout, 'v1', reference);
  return reference;
}

test.before(async () => {
  workDir = await mkdtemp(path.join(tmpdir(), 'berth-events-'));
  [registry, agent] = await Promise.all([RegistryProcess.start(), AgentDaemon.start()]);
  image = await pushImage('busybox', await busyboxEntries(['sh', 'sleep', 'true']));
  since = (Date.now() / 1000).toFixed(3);
  await agent.cli(['pull', image]);
});

test.after.always(async () => {
  await agent?.destroy();
  await registry?.destroy();
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

/** `berth-agent events --since <before the pull> --until now` with these flags, as lines. */
async function pastEvents(flags: string[]): Promise<string[]> {
  const { stdout } = await agent.cli(['events', '--since', since, '--until', (Date.now() / 1000).toFixed(3), ...flags]);
  return stdout.split('\n').filter(Boolean);
}

interface Line {
  time: string;
  type: string;
  action: string;
  id: string;
  attributes: string;
}

/** docker's default event line: `<time> <type> <action> <id> (<key=value, ...>)`. */
function parseLine(line: string): Line {
  const match = /^(\S+) (container|image) (.+?) (\S+) \((.*)\)$/.exec(line);
  if (!match) throw new Error(`not an event line: ${line}`);
  const [, time = '', type = '', action = '', id = '', attributes = ''] = match;
  return { time, type, action, id, attributes };
}

test.serial("events --since replays a run's create, start, health_status and die with its exit code, in docker's line", async (t) => {
  // It ends with 3 once the test has seen it healthy and created /tmp/go.
  const script = 'while [ ! -e /tmp/go ]; do sleep 0.1; done; exit 3';
  const flags = ['--name', 'ev-run', '--network', 'none', '--health-cmd', 'true', '--health-interval', '200ms'];
  const id = (await agent.cli(['run', '-d', ...flags, image, 'sh', '-c', script])).stdout.trim();
  await eventually(
    () => agentApi<InspectResult>(agent, 'GET', `/v1/containers/${id}`),
    (inspected) => inspected.body.State.Health?.Status === 'healthy',
    10_000,
  );
  await agent.cli(['exec', 'ev-run', 'sh', '-c', ': > /tmp/go']);
  t.is((await agent.cli(['wait', 'ev-run'])).stdout.trim(), '3');
  const lines = (await pastEvents(['--filter', 'container=ev-run'])).map(parseLine);
  t.deepEqual(
    lines.map((line) => line.action),
    ['create', 'start', 'health_status: healthy', 'die'],
  );
  for (const line of lines) {
    t.regex(line.time, TIMESTAMP);
    t.is(line.type, 'container');
    t.is(line.id, id);
  }
  t.regex(lines[3]?.attributes ?? '', new RegExp(`^execDuration=\\d+, exitCode=3, image=${image.replace(/[.:/]/g, '\\$&')}, name=ev-run$`));
  t.is(lines[0]?.attributes, `image=${image}, name=ev-run`);

  const json = await pastEvents(['--filter', 'container=ev-run', '--filter', 'event=die', '--format', '{{json .}}']);
  t.is(json.length, 1);
  const raw = json[0] ?? '';
  const timeNano = /"timeNano":(\d{19})}$/.exec(raw)?.[1];
  t.truthy(timeNano, `timeNano is an exact integer: ${raw}`);
  const message = JSON.parse(raw) as Record<string, unknown>;
  t.deepEqual(Object.keys(message), ['status', 'id', 'from', 'Type', 'Action', 'Actor', 'scope', 'time', 'timeNano']);
  t.like(message, {
    status: 'die',
    id,
    from: image,
    Type: 'container',
    Action: 'die',
    Actor: { ID: id, Attributes: { exitCode: '3', image, name: 'ev-run' } },
    scope: 'local',
    time: Number(BigInt(timeNano ?? '0') / 1_000_000_000n),
  });

  t.deepEqual(await pastEvents(['--filter', 'event=health_status', '--format', '{{.Action}} {{.Actor.Attributes.name}}']), [
    'health_status: healthy ev-run',
  ]);
});

test.serial('a container over its memory limit is OOM-killed: events show oom then die with 137, and inspect says OOMKilled', async (t) => {
  // Waits a moment first, as a program's start would: the OOM watch begins just after the process starts.
  const hog = 'sleep 2; x=a; while :; do x="$x$x"; done';
  const id = (
    await agent.cli(['run', '-d', '--name', 'ev-oom', '--memory', '16m', '--network', 'none', image, 'sh', '-c', hog])
  ).stdout.trim();
  t.is((await agent.cli(['wait', 'ev-oom'])).stdout.trim(), '137');
  const lines = (await pastEvents(['--filter', 'container=ev-oom'])).map(parseLine);
  t.deepEqual(
    lines.map((line) => line.action),
    ['create', 'start', 'oom', 'die'],
  );
  t.is(lines[2]?.attributes, `image=${image}, name=ev-oom`);
  t.regex(lines[3]?.attributes ?? '', /exitCode=137/);
  t.true((await agentApi<InspectResult>(agent, 'GET', `/v1/containers/${id}`)).body.State.OOMKilled);
  t.is((await agent.cli(['inspect', '--format', '{{.State.OOMKilled}}', 'ev-oom'])).stdout.trim(), 'true');

  // Under its limit, or killed by a user, a container is not OOMKilled and has no oom event.
  await agent.cli(['run', '-d', '--name', 'ev-fits', '--memory', '16m', '--network', 'none', image, 'sleep', '30']);
  await agent.cli(['kill', 'ev-fits']);
  t.is((await agent.cli(['wait', 'ev-fits'])).stdout.trim(), '137');
  t.is((await agent.cli(['inspect', '--format', '{{.State.OOMKilled}}', 'ev-fits'])).stdout.trim(), 'false');
  t.false((await pastEvents(['--filter', 'container=ev-fits'])).some((line) => parseLine(line).action === 'oom'));
  await agent.cli(['rm', '-f', 'ev-oom', 'ev-fits']);
});

test.serial('the event stream API delivers live events as they happen: stop is kill, kill, die, stop; rm is destroy', async (t) => {
  const stream = await agentStream(agent, `/v1/events?filters=${encodeURIComponent(JSON.stringify({ type: ['container'] }))}`);
  t.teardown(() => stream.close());
  t.is(stream.response.statusCode, 200);
  t.is(stream.response.headers['content-type'], 'application/x-ndjson');
  const seen: Array<{ Action: string; Actor: { ID: string; Attributes: Record<string, string> } }> = [];
  const reading = (async () => {
    for (let next = await stream.lines.next(); !next.done; next = await stream.lines.next()) {
      seen.push(JSON.parse(next.value) as (typeof seen)[number]);
      if (seen.at(-1)?.Action === 'destroy') return;
    }
  })();
  // sleep as pid 1 ignores SIGTERM: stop has to kill it.
  await agent.cli(['run', '-d', '--name', 'ev-live', '--network', 'none', image, 'sleep', '30']);
  await agent.cli(['stop', '-t', '1', 'ev-live']);
  await agent.cli(['rm', 'ev-live']);
  await Promise.race([
    reading,
    new Promise((_, reject) => setTimeout(() => reject(new Error(`events so far: ${JSON.stringify(seen)}`)), 20_000)),
  ]);
  t.deepEqual(
    seen.map((event) => [event.Action, event.Actor.Attributes.signal ?? event.Actor.Attributes.exitCode ?? '']),
    [
      ['create', ''],
      ['start', ''],
      ['kill', '15'],
      ['kill', '9'],
      ['die', '137'],
      ['stop', ''],
      ['destroy', ''],
    ],
  );
  t.true(seen.every((event) => event.Actor.Attributes.name === 'ev-live'));
});

test.serial('image events: pull, and untag and delete on rmi, selected with --filter type=image', async (t) => {
  const other = await pushImage('tiny', [{ name: 'etc/tiny', content: 'tiny\n' }]);
  await agent.cli(['pull', other]);
  await agent.cli(['rmi', other]);
  const lines = (await pastEvents(['--filter', 'type=image'])).map(parseLine);
  t.deepEqual(
    lines.map((line) => [line.action, line.id]),
    [
      ['pull', image],
      ['pull', other],
      ['untag', lines[2]?.id ?? ''],
      ['delete', lines[2]?.id ?? ''],
    ],
  );
  t.regex(lines[2]?.id ?? '', /^sha256:[0-9a-f]{64}$/);
  t.is(lines[0]?.attributes, `name=${image}`);
});

test.serial('events --since replays the history kept on disk after an agent SIGKILL; bad filters and windows are refused', async (t) => {
  const before = await pastEvents([]);
  t.true(before.length >= 11);
  await agent.killAndRestart();
  t.deepEqual(await pastEvents([]), before);

  const badFilter = await agent.cli(['events', '--filter', 'colour=red'], { allowFailure: true });
  t.is(badFilter.code, 1);
  t.regex(badFilter.stderr, /invalid filter 'colour'/);
  const malformed = await agent.cli(['events', '--filter', 'type'], { allowFailure: true });
  t.regex(malformed.stderr, /bad format of filter \(expected name=value\)/);
  const window = await agentApi<{ errors: Array<{ code: string; message: string }> }>(agent, 'GET', '/v1/events?since=2000&until=1000');
  t.is(window.status, 400);
  t.is(window.body.errors[0]?.code, 'REQUEST_INVALID');
});
