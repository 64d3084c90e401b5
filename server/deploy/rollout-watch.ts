import { isDeepStrictEqual } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';

/** A service as the admin API shows it (`GET .../services/<service>`), as much as a watch reads. */
export interface WatchedService {
  service: string;
  /** The revision the service was last asked to run. */
  desired: number;
  rollout: { revision: number; target: number; status: string; reason: string | null } | null;
  replicas: Array<{ slot: string; node: string; revision: number; health: string; message: string }>;
}

export const TERMINAL_ROLLOUTS = new Set(['succeeded', 'reverted', 'paused', 'failed']);

/** The rollout a watch waits for has ended: the one of the revision last asked for, or a later one. */
export function rolloutEnded(service: WatchedService): boolean {
  const { rollout } = service;
  return rollout !== null && rollout.revision >= service.desired && TERMINAL_ROLLOUTS.has(rollout.status);
}

/**
 * What changed between two looks at a service, one line each, as `kubectl rollout status` and `docker
 * service update` tell progress: the rollout's phase, each replica's revision and health as its node
 * reports it, and how many replicas are healthy on the revision being rolled to.
 */
export function rolloutChanges(before: WatchedService | undefined, now: WatchedService): string[] {
  const { rollout } = now;
  const phaseLines =
    rollout && (rollout.status !== before?.rollout?.status || rollout.revision !== before.rollout.revision)
      ? [`${now.service}: ${phase(rollout)}`]
      : [];
  const [stack, service] = now.service.split('/');
  const previous = new Map(before?.replicas.map((replica) => [replica.slot, replica]));
  const replicaLines = now.replicas
    .filter((replica) => !isDeepStrictEqual(previous.get(replica.slot), replica))
    .map(
      (replica) =>
        `${stack}/${service}.${replica.slot}@${replica.node}: revision ${replica.revision} ${replica.health}${replica.message === '' ? '' : ` (${replica.message})`}`,
    );
  if (!rollout) return replicaLines;
  const progress = healthyOn(now, rollout.target);
  const progressLines =
    before === undefined || progress !== healthyOn(before, rollout.target)
      ? [`${now.service}: ${progress} of ${now.replicas.length} replicas healthy on revision ${rollout.target}`]
      : [];
  // An ended rollout is told last, after the replicas that ended it and the count they make (the last replica's
  // health and the end often arrive in one look).
  if (TERMINAL_ROLLOUTS.has(rollout.status)) return [...replicaLines, ...progressLines, ...phaseLines];
  return [...phaseLines, ...replicaLines, ...progressLines];
}

function phase(rollout: NonNullable<WatchedService['rollout']>): string {
  const why = rollout.reason === null ? '' : `: ${rollout.reason}`;
  if (rollout.status === 'rolling') return `rolling out revision ${rollout.revision}`;
  if (rollout.status === 'reverting') return `revision ${rollout.revision} failed, reverting to revision ${rollout.target}${why}`;
  return `revision ${rollout.revision} ${rollout.status}${why}`;
}

function healthyOn(service: WatchedService, revision: number): number {
  return service.replicas.filter((replica) => replica.revision === revision && replica.health === 'healthy').length;
}

/**
 * Looks at the service every `pollMs` until its rollout ended or `deadline` passed, writing each change:
 * the last look, or undefined when the deadline came first.
 */
export async function watchRollout(
  look: () => Promise<WatchedService>,
  write: (line: string) => void,
  options: { deadline: number; pollMs: number },
): Promise<WatchedService | undefined> {
  let before: WatchedService | undefined;
  while (Date.now() < options.deadline) {
    const now = await look();
    for (const line of rolloutChanges(before, now)) write(line);
    if (rolloutEnded(now)) return now;
    before = now;
    await sleep(Math.max(0, Math.min(options.pollMs, options.deadline - Date.now())));
  }
  return undefined;
}
