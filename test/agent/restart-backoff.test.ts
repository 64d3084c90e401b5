import test from 'ava';
import type { RestartPolicy } from '../../runtime-agent/container/container-spec.js';
import {
  decideRestart,
  DEFAULT_RESTART_BACKOFF,
  NO_RESTARTS_YET,
  shouldStartAtBoot,
  type ContainerExit,
  type RestartBackoff,
  type RestartHistory,
} from '../../runtime-agent/container/restart-backoff.js';

// Pure decisions only: the supervisor's own waiting (ContainerManager under runc) is measured from a real
// container's log in test/agent/containers.test.ts ("restarted three times with growing delays").

/** The backoff scaled down a hundredfold. */
const FAST: RestartBackoff = { initialDelayMs: 100, maxDelayMs: 800, resetAfterUpMs: 1_000 };
const onFailure = (maximumRetryCount?: number): RestartPolicy => ({ name: 'on-failure', maximumRetryCount });
const crash: ContainerExit = { exitCode: 1, stoppedByUser: false, upTimeMs: 50 };
const success: ContainerExit = { exitCode: 0, stoppedByUser: false, upTimeMs: 50 };
const userStop: ContainerExit = { exitCode: 143, stoppedByUser: true, upTimeMs: 50 };

/** The delays before each restart while the container keeps exiting the same way, until one is refused. */
function restartDelays(policy: RestartPolicy, exit: ContainerExit, backoff: RestartBackoff, limit = 20): number[] {
  const delays: number[] = [];
  let history: RestartHistory = NO_RESTARTS_YET;
  for (let decision = decideRestart(policy, exit, history, backoff); decision.restart && delays.length < limit;) {
    delays.push(decision.delayMs);
    history = decision.history;
    decision = decideRestart(policy, exit, history, backoff);
  }
  return delays;
}

test('on-failure:3 restarts a crashing container three times with doubling delays, then leaves it exited', (t) => {
  t.deepEqual(restartDelays(onFailure(3), crash, FAST), [100, 200, 400]);
  t.deepEqual(restartDelays(onFailure(3), crash, DEFAULT_RESTART_BACKOFF), [10_000, 20_000, 40_000]);
});

test("on-failure restarts after a non-zero exit only, and without a count (or docker's 0) keeps restarting", (t) => {
  t.deepEqual(restartDelays(onFailure(3), success, FAST), []);
  t.deepEqual(restartDelays(onFailure(3), { ...crash, exitCode: 137 }, FAST), [100, 200, 400]);
  t.is(restartDelays(onFailure(), crash, FAST).length, 20);
  t.is(restartDelays(onFailure(0), crash, FAST).length, 20);
});

test('the default delay starts at 10 s and doubles up to 5 minutes', (t) => {
  t.deepEqual(
    restartDelays({ name: 'always' }, crash, DEFAULT_RESTART_BACKOFF, 8).map((ms) => ms / 1000),
    [10, 20, 40, 80, 160, 300, 300, 300],
  );
});

test('a run that stayed up for the reset period restarts after the initial delay again, and its restarts still count', (t) => {
  let history: RestartHistory = NO_RESTARTS_YET;
  const delays: number[] = [];
  for (const upTimeMs of [50, 50, 50, 999, 1_000, 50]) {
    const decision = decideRestart(onFailure(6), { ...crash, upTimeMs }, history, FAST);
    if (!decision.restart) return t.fail(`no restart after a run of ${upTimeMs} ms`);
    delays.push(decision.delayMs);
    history = decision.history;
  }
  t.deepEqual(delays, [100, 200, 400, 800, 100, 200]);
  t.is(history.restartCount, 6);
  t.false(decideRestart(onFailure(6), { ...crash, upTimeMs: 5_000 }, history, FAST).restart, 'on-failure:6 allows six in all');
});

test('always and unless-stopped restart after any exit but not after the user stopped the container; no never does', (t) => {
  for (const name of ['always', 'unless-stopped'] as const) {
    t.deepEqual(restartDelays({ name }, success, FAST, 5), [100, 200, 400, 800, 800], name);
    t.deepEqual(restartDelays({ name }, crash, FAST, 3), [100, 200, 400], name);
    t.deepEqual(restartDelays({ name }, userStop, FAST), [], name);
  }
  t.deepEqual(restartDelays(onFailure(3), userStop, FAST), []);
  t.deepEqual(restartDelays({ name: 'no' }, crash, FAST), []);
});

test('at agent start, always brings back even a stopped container, unless-stopped and on-failure only ones the user did not stop', (t) => {
  const startedAtBoot = (policy: RestartPolicy) => [success, crash, userStop].map((exit) => shouldStartAtBoot(policy, exit));
  // Columns: exited 0, crashed, stopped by the user.
  t.deepEqual(startedAtBoot({ name: 'always' }), [true, true, true]);
  t.deepEqual(startedAtBoot({ name: 'unless-stopped' }), [true, true, false]);
  t.deepEqual(startedAtBoot(onFailure(3)), [false, true, false]);
  t.deepEqual(startedAtBoot({ name: 'no' }), [false, false, false]);
});
