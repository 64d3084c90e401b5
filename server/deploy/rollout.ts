import type { UpdatePolicy } from './compose/stack-spec.js';

/**
 * The rollout state machine, pure: given the state, what each replica slot reported and the time, it says
 * which slots move to which revision and what happened. The controller stores the state, applies the
 * assignments and calls it again on the next report or tick; calling it twice with the same input gives
 * the same answer, so a controller that crashed between two steps repeats the step harmlessly.
 *
 * Slots are replaced `parallelism` at a time (0: all at once). A new replica must become healthy within
 * `healthyDeadlineMs` and stay healthy for `monitorMs`; then, after `delayMs`, the next batch starts. A
 * replica that fails, or more failures than `maxFailureRatio` of the slots, or the rollout running past
 * `progressDeadlineMs`, triggers the failure action: `rollback` reverts every slot to the last revision that
 * was fully healthy (with the rollback policy), `pause` stops where it is, `continue` carries on.
 */
export type ReplicaHealth = 'starting' | 'healthy' | 'unhealthy' | 'failed';

export interface SlotView {
  slot: string;
  /** The revision the slot is assigned (0: nothing yet). */
  revision: number;
  /** What the node reported for that revision; `starting` until it reports. */
  health: ReplicaHealth;
  /** The node's word on it (which check fails, how the container ended); empty until it reports. */
  message: string;
  /** When the slot got its revision. */
  startedAt: number;
  healthySince: number | null;
}

export type RolloutStatus = 'rolling' | 'reverting' | 'paused' | 'succeeded' | 'reverted' | 'failed';

export interface RolloutState {
  /** The revision the slots are moving to: the new one, or while reverting the last healthy one. */
  target: number;
  /** The revision this rollout was started for. */
  revision: number;
  /** The last revision all of whose replicas were healthy; null before the first success. */
  lastHealthy: number | null;
  status: RolloutStatus;
  reason: string | null;
  update: UpdatePolicy;
  rollback: UpdatePolicy;
  healthyDeadlineMs: number;
  progressDeadlineMs: number;
  startedAt: number;
  /** Slots being replaced now. */
  batch: string[];
  /** When the next batch may start (the update delay), if it is waited for. */
  waitUntil: number | null;
  /** Slots that failed during the current phase (update or revert). */
  failedSlots: string[];
}

export type RolloutEventKind = 'started' | 'succeeded' | 'reverting' | 'reverted' | 'paused' | 'failed';

export interface RolloutEvent {
  kind: RolloutEventKind;
  revision: number;
  reason: string | null;
}

export interface RolloutStep {
  state: RolloutState;
  /** Slots to give a new revision. */
  assign: Array<{ slot: string; revision: number }>;
  events: RolloutEvent[];
}

export interface RolloutStart {
  revision: number;
  lastHealthy: number | null;
  update: UpdatePolicy;
  rollback: UpdatePolicy;
  healthyDeadlineMs: number;
  progressDeadlineMs: number;
  now: number;
}

export function startRollout(start: RolloutStart): RolloutState {
  return {
    target: start.revision,
    revision: start.revision,
    lastHealthy: start.lastHealthy,
    status: 'rolling',
    reason: null,
    update: start.update,
    rollback: start.rollback,
    healthyDeadlineMs: start.healthyDeadlineMs,
    progressDeadlineMs: start.progressDeadlineMs,
    startedAt: start.now,
    batch: [],
    waitUntil: null,
    failedSlots: [],
  };
}

export function isActive(state: RolloutState): boolean {
  return state.status === 'rolling' || state.status === 'reverting';
}

export function stepRollout(initial: RolloutState, slots: SlotView[], now: number): RolloutStep {
  const step: RolloutStep = { state: { ...initial }, assign: [], events: [] };
  if (!isActive(initial)) return step;
  const policy = initial.status === 'reverting' ? initial.rollback : initial.update;
  if (now - initial.startedAt > initial.progressDeadlineMs) {
    return fail(step, `the rollout did not finish within progress_deadline (${initial.progressDeadlineMs} ms)`, now);
  }
  const views = new Map(slots.map((view) => [view.slot, view]));
  const stillRunning: string[] = [];
  for (const slot of step.state.batch) {
    const verdict = judge(views.get(slot), step.state, policy, now);
    if (verdict === 'waiting') stillRunning.push(slot);
    else if (verdict !== 'done') {
      step.state = { ...step.state, failedSlots: [...step.state.failedSlots, slot] };
      if (step.state.failedSlots.length / Math.max(1, slots.length) > policy.maxFailureRatio && policy.failureAction !== 'continue') {
        return fail(step, `replica ${slot}: ${verdict}`, now);
      }
    }
  }
  step.state.batch = stillRunning;
  if (stillRunning.length > 0) return step;
  const pending = slots
    .filter((view) => view.revision !== step.state.target && !step.state.failedSlots.includes(view.slot))
    .map((view) => view.slot)
    .sort(bySlot);
  if (pending.length === 0) return finish(step);
  if (step.state.waitUntil === null && initial.batch.length > 0 && policy.delayMs > 0) {
    step.state.waitUntil = now + policy.delayMs;
  }
  if (step.state.waitUntil !== null && now < step.state.waitUntil) return step;
  const batch = pending.slice(0, policy.parallelism === 0 ? pending.length : policy.parallelism);
  step.state.batch = batch;
  step.state.waitUntil = null;
  step.assign = batch.map((slot) => ({ slot, revision: step.state.target }));
  return step;
}

type Verdict = 'waiting' | 'done' | string;

function judge(view: SlotView | undefined, state: RolloutState, policy: UpdatePolicy, now: number): Verdict {
  // Not yet applied by the controller, or the slot went away (scaled down): nothing to wait for.
  if (view === undefined) return 'done';
  if (view.revision !== state.target) return 'waiting';
  const why = view.message === '' ? '' : `: ${view.message}`;
  if (view.health === 'failed') return `the new replica failed${why}`;
  if (view.health === 'unhealthy') return `the new replica became unhealthy${why}`;
  if (view.health === 'healthy') return now - (view.healthySince ?? now) >= policy.monitorMs ? 'done' : 'waiting';
  if (now - view.startedAt > state.healthyDeadlineMs) return `not healthy within healthy_deadline (${state.healthyDeadlineMs} ms)`;
  return 'waiting';
}

function finish(step: RolloutStep): RolloutStep {
  const { state } = step;
  if (state.status === 'reverting') {
    step.state = { ...state, status: 'reverted', batch: [] };
    step.events.push({ kind: 'reverted', revision: state.revision, reason: state.reason });
  } else if (state.failedSlots.length > 0) {
    step.state = {
      ...state,
      status: 'failed',
      batch: [],
      reason: `${state.failedSlots.length} replica(s) failed (failure_action: continue)`,
    };
    step.events.push({ kind: 'failed', revision: state.revision, reason: step.state.reason });
  } else {
    step.state = { ...state, status: 'succeeded', batch: [], lastHealthy: state.target };
    step.events.push({ kind: 'succeeded', revision: state.revision, reason: null });
  }
  return step;
}

function fail(step: RolloutStep, reason: string, now: number): RolloutStep {
  const { state } = step;
  const reverting = state.status === 'reverting';
  const action = reverting ? state.rollback.failureAction : state.update.failureAction;
  if (!reverting && action === 'rollback' && state.lastHealthy !== null) {
    // The revert starts now, with its own deadline, and replaces every slot not on the healthy revision.
    step.state = {
      ...state,
      status: 'reverting',
      target: state.lastHealthy,
      reason,
      startedAt: now,
      batch: [],
      waitUntil: null,
      failedSlots: [],
    };
    step.events.push({ kind: 'reverting', revision: state.revision, reason });
    return step;
  }
  if (!reverting && action === 'rollback') {
    step.state = { ...state, status: 'failed', reason: `${reason}; no earlier healthy revision to revert to`, batch: [] };
    step.events.push({ kind: 'failed', revision: state.revision, reason: step.state.reason });
    return step;
  }
  const why = reverting ? `reverting after "${state.reason}" failed too: ${reason}` : reason;
  step.state = { ...state, status: 'paused', reason: why, batch: [] };
  step.events.push({ kind: 'paused', revision: state.revision, reason: why });
  return step;
}

function bySlot(a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true });
}
