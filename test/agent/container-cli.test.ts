import test from 'ava';
import { parseSince } from '../../runtime-agent/client/container-commands.js';
import { statusText } from '../../runtime-agent/client/containers-table.js';

const NOW = Date.parse('2026-11-23T12:00:00Z');

test('logs --since takes docker durations, unix seconds and timestamps, and refuses the rest', (t) => {
  t.is(parseSince('90s', NOW).toISOString(), '2026-11-23T11:58:30.000Z');
  t.is(parseSince('1h30m', NOW).toISOString(), '2026-11-23T10:30:00.000Z');
  t.is(parseSince('1795435200', NOW).toISOString(), '2026-11-23T12:00:00.000Z');
  t.is(parseSince('2026-11-23T11:00:00Z', NOW).toISOString(), '2026-11-23T11:00:00.000Z');
  t.throws(() => parseSince('yesterday', NOW), { message: /invalid --since "yesterday"/ });
});

/** The fields of a container summary that no status test looks at. */
const base = {
  id: 'x',
  name: 'n',
  image: 'i',
  command: 'c',
  createdAt: '2026-11-23T11:00:00Z',
  restartCount: 0,
  ports: [],
  health: undefined,
  paused: false,
};

test("ps words a container's status as docker does", (t) => {
  t.is(
    statusText({ ...base, status: 'running', startedAt: '2026-11-23T11:59:55Z', exitCode: undefined, finishedAt: undefined }, NOW),
    'Up 5 seconds',
  );
  t.is(
    statusText({ ...base, status: 'exited', startedAt: undefined, exitCode: 137, finishedAt: '2026-11-23T09:00:00Z' }, NOW),
    'Exited (137) 3 hours ago',
  );
  t.is(
    statusText({ ...base, status: 'restarting', startedAt: undefined, exitCode: 1, finishedAt: '2026-11-23T11:59:00Z' }, NOW),
    'Restarting (1) About a minute ago',
  );
  t.is(
    statusText(
      { ...base, status: 'running', paused: true, startedAt: '2026-11-23T11:57:00Z', exitCode: undefined, finishedAt: undefined },
      NOW,
    ),
    'Up 3 minutes (Paused)',
  );
  t.is(statusText({ ...base, status: 'created', startedAt: undefined, exitCode: undefined, finishedAt: undefined }, NOW), 'Created');
});

test("ps shows a running container's health after Up as docker does", (t) => {
  const up = { ...base, status: 'running' as const, startedAt: '2026-11-23T11:58:00Z', exitCode: undefined, finishedAt: undefined };
  t.is(statusText({ ...up, health: 'starting' }, NOW), 'Up 2 minutes (health: starting)');
  t.is(statusText({ ...up, health: 'healthy' }, NOW), 'Up 2 minutes (healthy)');
  t.is(statusText({ ...up, health: 'unhealthy' }, NOW), 'Up 2 minutes (unhealthy)');
  t.is(statusText({ ...up, health: undefined }, NOW), 'Up 2 minutes');
  // docker shows a paused container's freeze, not its health.
  t.is(statusText({ ...up, health: 'healthy', paused: true }, NOW), 'Up 2 minutes (Paused)');
});
