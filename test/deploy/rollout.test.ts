import test from 'ava';
import type { UpdatePolicy } from '../../server/deploy/compose/stack-spec.js';
import {
  startRollout,
  stepRollout,
  type ReplicaHealth,
  type RolloutEvent,
  type RolloutState,
  type SlotView,
} from '../../server/deploy/rollout.js';

const policy = (overrides: Partial<UpdatePolicy> = {}): UpdatePolicy => ({
  parallelism: 1,
  delayMs: 0,
  failureAction: 'rollback',
  monitorMs: 1000,
  maxFailureRatio: 0,
  order: 'start-first',
  ...overrides,
});

/** Three slots on revision 1 and a fake clock; `step` applies the assignments the way the controller does. */
class Fleet {
  now = 0;
  slots = new Map<string, SlotView>();
  events: RolloutEvent[] = [];
  state: RolloutState;

  constructor(
    update: Partial<UpdatePolicy> = {},
    options: { lastHealthy?: number | null; slots?: number; rollback?: Partial<UpdatePolicy> } = {},
  ) {
    for (let slot = 1; slot <= (options.slots ?? 3); slot++)
      this.slots.set(String(slot), { slot: String(slot), revision: 1, health: 'healthy', message: '', startedAt: 0, healthySince: 0 });
    this.state = startRollout({
      revision: 2,
      lastHealthy: options.lastHealthy === undefined ? 1 : options.lastHealthy,
      update: policy(update),
      rollback: policy({ failureAction: 'pause', ...options.rollback }),
      healthyDeadlineMs: 5000,
      progressDeadlineMs: 60_000,
      now: 0,
    });
  }

  step(): string[] {
    const result = stepRollout(this.state, [...this.slots.values()], this.now);
    this.state = result.state;
    this.events.push(...result.events);
    for (const { slot, revision } of result.assign)
      this.slots.set(slot, { slot, revision, health: 'starting', message: '', startedAt: this.now, healthySince: null });
    return result.assign.map(({ slot, revision }) => `${slot}@${revision}`);
  }

  report(slot: string, health: ReplicaHealth): void {
    const view = this.slots.get(slot)!;
    this.slots.set(slot, { ...view, health, healthySince: health === 'healthy' ? this.now : null });
  }

  advance(ms: number): void {
    this.now += ms;
  }

  /** The slot reports healthy, stays so for `ms`, and the rollout steps: what it assigned then. */
  healthyFor(slot: string, ms: number): string[] {
    this.report(slot, 'healthy');
    this.advance(ms);
    return this.step();
  }

  revisions(): number[] {
    return [...this.slots.values()].map((view) => view.revision);
  }
}

test('one replica at a time: the next starts only after the last was healthy for the whole monitor window', (t) => {
  const fleet = new Fleet();
  t.deepEqual(fleet.step(), ['1@2']);
  fleet.advance(500);
  t.deepEqual(fleet.step(), [], 'still starting');
  t.deepEqual(fleet.healthyFor('1', 999), [], 'healthy, but not yet for the monitor window');
  fleet.advance(1);
  t.deepEqual(fleet.step(), ['2@2']);
  t.deepEqual(fleet.healthyFor('2', 1000), ['3@2']);
  t.deepEqual(fleet.healthyFor('3', 1000), []);
  t.like(fleet.state, { status: 'succeeded', lastHealthy: 2 });
  t.deepEqual(fleet.events, [{ kind: 'succeeded', revision: 2, reason: null }]);
});

test('parallelism replaces that many at once, 0 all at once, and delay waits between batches', (t) => {
  const pairs = new Fleet({ parallelism: 2, delayMs: 3000 });
  t.deepEqual(pairs.step(), ['1@2', '2@2']);
  pairs.report('1', 'healthy');
  t.deepEqual(pairs.healthyFor('2', 1000), [], 'the delay starts');
  pairs.advance(2999);
  t.deepEqual(pairs.step(), []);
  pairs.advance(1);
  t.deepEqual(pairs.step(), ['3@2']);
  t.deepEqual(new Fleet({ parallelism: 0 }).step(), ['1@2', '2@2', '3@2']);
});

test('an unhealthy new replica reverts the fleet to the last healthy revision, with the rollback policy', (t) => {
  const fleet = new Fleet({}, { rollback: { parallelism: 0 } });
  fleet.step();
  fleet.healthyFor('1', 1000);
  fleet.advance(200);
  fleet.report('2', 'unhealthy');
  t.deepEqual(fleet.step(), []);
  t.like(fleet.state, { status: 'reverting', target: 1, reason: 'replica 2: the new replica became unhealthy' });
  fleet.advance(10);
  t.deepEqual(fleet.step(), ['1@1', '2@1'], 'every slot not on revision 1 goes back, all at once as rollback_config says');
  fleet.report('1', 'healthy');
  fleet.healthyFor('2', 1000);
  t.deepEqual(fleet.revisions(), [1, 1, 1]);
  t.like(fleet.state, { status: 'reverted', lastHealthy: 1 });
  t.deepEqual(
    fleet.events.map((event) => event.kind),
    ['reverting', 'reverted'],
  );
  t.is(fleet.events[1]!.reason, 'replica 2: the new replica became unhealthy');
});

test('a replica healthy at first that fails inside the monitor window fails the rollout', (t) => {
  const fleet = new Fleet();
  fleet.step();
  fleet.healthyFor('1', 900);
  fleet.report('1', 'unhealthy');
  fleet.step();
  t.is(fleet.state.status, 'reverting');
});

test('a replica never healthy within healthy_deadline fails the rollout', (t) => {
  const fleet = new Fleet();
  fleet.step();
  fleet.advance(5000);
  fleet.step();
  t.is(fleet.state.status, 'rolling', 'exactly at the deadline it may still make it');
  fleet.advance(1);
  fleet.step();
  t.like(fleet.state, { status: 'reverting', reason: 'replica 1: not healthy within healthy_deadline (5000 ms)' });
});

test('a rollout past progress_deadline fails even while each replica is within its own deadline', (t) => {
  const fleet = new Fleet({ monitorMs: 50_000 });
  fleet.step();
  fleet.healthyFor('1', 50_000);
  fleet.healthyFor('2', 10_001);
  t.like(fleet.state, { status: 'reverting', reason: 'the rollout did not finish within progress_deadline (60000 ms)' });
});

test('max_failure_ratio tolerates that share of failed replicas', (t) => {
  const fleet = new Fleet({ maxFailureRatio: 0.34 }, { slots: 3 });
  fleet.step();
  fleet.report('1', 'failed');
  t.deepEqual(fleet.step(), ['2@2'], 'one failure of three is within 0.34');
  fleet.report('2', 'failed');
  fleet.step();
  t.like(fleet.state, { status: 'reverting', reason: 'replica 2: the new replica failed' });
});

test('failure_action pause stops where it is; continue carries on and reports the failures at the end', (t) => {
  const paused = new Fleet({ failureAction: 'pause' });
  paused.step();
  paused.report('1', 'failed');
  t.deepEqual(paused.step(), []);
  t.like(paused.state, { status: 'paused', reason: 'replica 1: the new replica failed' });
  paused.advance(100_000);
  t.deepEqual(paused.step(), [], 'a paused rollout does nothing more');

  const continued = new Fleet({ failureAction: 'continue' });
  continued.step();
  continued.report('1', 'failed');
  t.deepEqual(continued.step(), ['2@2']);
  continued.healthyFor('2', 1000);
  continued.healthyFor('3', 1000);
  t.like(continued.state, { status: 'failed', lastHealthy: 1, reason: '1 replica(s) failed (failure_action: continue)' });
});

test('the first deploy has nothing to revert to and fails with that reason', (t) => {
  const fleet = new Fleet({}, { lastHealthy: null });
  fleet.step();
  fleet.report('1', 'failed');
  fleet.step();
  t.like(fleet.state, { status: 'failed', reason: 'replica 1: the new replica failed; no earlier healthy revision to revert to' });
});

test('a revert that fails too pauses, as rollback_config says', (t) => {
  const fleet = new Fleet();
  fleet.step();
  fleet.report('1', 'failed');
  fleet.step();
  fleet.step();
  fleet.report('1', 'failed');
  fleet.step();
  t.like(fleet.state, { status: 'paused' });
  t.regex(fleet.state.reason ?? '', /^reverting after "replica 1: the new replica failed" failed too: replica 1/);
});

test('the same step repeated with the same input gives the same answer', (t) => {
  const fleet = new Fleet();
  fleet.step();
  fleet.report('1', 'healthy');
  fleet.advance(1000);
  const slots = [...fleet.slots.values()];
  const first = stepRollout(fleet.state, slots, fleet.now);
  const again = stepRollout(fleet.state, slots, fleet.now);
  t.deepEqual(first, again);
  t.deepEqual(first.assign, [{ slot: '2', revision: 2 }]);
});
