import { effectiveTiming, type HealthConfig } from './health-config.js';

/** docker's health statuses; `starting` until a probe succeeds or the failures reach the retries. */
export type HealthStatus = 'starting' | 'healthy' | 'unhealthy';

/** One probe's result, as `inspect` shows it in State.Health.Log. */
export interface HealthResult {
  Start: string;
  End: string;
  ExitCode: number;
  Output: string;
}

/** A container's health (State.Health), kept in its record so that it outlives a daemon restart. */
export interface HealthState {
  Status: HealthStatus;
  FailingStreak: number;
  Log: HealthResult[];
}

/** docker keeps the last 5 results. */
export const MAX_LOG_ENTRIES = 5;

/** A new run starts over (`starting`, no failing streak) and keeps the earlier results, as docker does. */
export function healthAtStart(previous: HealthState | undefined): HealthState {
  return { Status: 'starting', FailingStreak: 0, Log: previous?.Log ?? [] };
}

/**
 * docker's rules for a probe's result: exit 0 makes the container healthy and ends the streak; any other
 * result adds to the failing streak (unless the container is still starting within its start period) and
 * makes it unhealthy once the streak reaches the retries.
 */
export function applyResult(state: HealthState, result: HealthResult, config: HealthConfig, startedAt: string | undefined): HealthState {
  const Log = [...state.Log, result].slice(-MAX_LOG_ENTRIES);
  if (result.ExitCode === 0) return { Status: 'healthy', FailingStreak: 0, Log };
  const timing = effectiveTiming(config);
  const sinceStartMs = Date.parse(result.Start) - Date.parse(startedAt ?? result.Start);
  if (state.Status === 'starting' && sinceStartMs < timing.startPeriodMs) return { ...state, Log };
  const FailingStreak = state.FailingStreak + 1;
  return { Status: FailingStreak >= timing.retries ? 'unhealthy' : state.Status, FailingStreak, Log };
}

/** How long until the next probe: the start interval while starting within the start period, else the interval. */
export function nextProbeDelayMs(state: HealthState, config: HealthConfig, startedAt: string | undefined, now = Date.now()): number {
  const timing = effectiveTiming(config);
  const withinStartPeriod = now - Date.parse(startedAt ?? new Date(now).toISOString()) < timing.startPeriodMs;
  return withinStartPeriod && state.Status === 'starting' ? timing.startIntervalMs : timing.intervalMs;
}

/** docker marks a container whose checks stopped (its run ended) unhealthy. */
export function healthAtStop(state: HealthState): HealthState {
  return { ...state, Status: 'unhealthy' };
}
