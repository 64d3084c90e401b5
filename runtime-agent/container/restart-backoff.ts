import type { RestartPolicy } from './container-spec.js';

/**
 * When a container that exited is started again, under `--restart` (docker's semantics). Pure decisions: the
 * container manager keeps the history and does the waiting.
 */

export interface RestartBackoff {
  /** The delay before the first restart, doubled for each following one. */
  initialDelayMs: number;
  maxDelayMs: number;
  /** A run that stayed up this long was healthy: the next restart waits the initial delay again. */
  resetAfterUpMs: number;
}

/** 10 s doubling to 5 minutes, back to 10 s after 10 minutes up. */
export const DEFAULT_RESTART_BACKOFF: RestartBackoff = {
  initialDelayMs: 10_000,
  maxDelayMs: 300_000,
  resetAfterUpMs: 600_000,
};

export interface ContainerExit {
  exitCode: number;
  /** `stop`, `kill` or `rm -f` by the user: no policy restarts it. */
  stoppedByUser: boolean;
  /** How long the run that just ended was up. */
  upTimeMs: number;
}

export interface RestartHistory {
  /** Restarts so far (docker's RestartCount; `on-failure:N` allows N). Kept across healthy runs, as docker does. */
  restartCount: number;
  /** The delay before the previous restart, or undefined before the first. */
  lastDelayMs: number | undefined;
}

export const NO_RESTARTS_YET: RestartHistory = { restartCount: 0, lastDelayMs: undefined };

export type RestartDecision =
  | { restart: false }
  /** Restart after `delayMs`; `history` is what to pass for the next exit. */
  | { restart: true; delayMs: number; history: RestartHistory };

export function decideRestart(
  policy: RestartPolicy,
  exit: ContainerExit,
  history: RestartHistory,
  backoff: RestartBackoff = DEFAULT_RESTART_BACKOFF,
): RestartDecision {
  if (exit.stoppedByUser || !policyRestarts(policy, exit.exitCode, history.restartCount)) return { restart: false };
  const delayMs = nextDelay(history.lastDelayMs, exit.upTimeMs, backoff);
  return { restart: true, delayMs, history: { restartCount: history.restartCount + 1, lastDelayMs: delayMs } };
}

/**
 * Whether an exited container is started when the agent starts. `always` brings back even a container the
 * user stopped (docker's rule: a stop lasts until the daemon restarts); `unless-stopped` does not. A
 * container found dead without a recorded exit (the host went down under it) should be passed as a failure.
 */
export function shouldStartAtBoot(policy: RestartPolicy, lastExit: Omit<ContainerExit, 'upTimeMs'>): boolean {
  switch (policy.name) {
    case 'no':
      return false;
    case 'always':
      return true;
    case 'unless-stopped':
      return !lastExit.stoppedByUser;
    case 'on-failure':
      return !lastExit.stoppedByUser && lastExit.exitCode !== 0;
  }
}

function policyRestarts(policy: RestartPolicy, exitCode: number, restartCount: number): boolean {
  switch (policy.name) {
    case 'no':
      return false;
    case 'always':
    case 'unless-stopped':
      return true;
    case 'on-failure': {
      // No count (or docker's 0) means no limit.
      const limit = policy.maximumRetryCount || Infinity;
      return exitCode !== 0 && restartCount < limit;
    }
  }
}

function nextDelay(lastDelayMs: number | undefined, upTimeMs: number, backoff: RestartBackoff): number {
  if (lastDelayMs === undefined || upTimeMs >= backoff.resetAfterUpMs) return backoff.initialDelayMs;
  return Math.min(lastDelayMs * 2, backoff.maxDelayMs);
}
