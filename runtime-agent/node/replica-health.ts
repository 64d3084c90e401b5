import type { ContainerRecord } from '../container/container-record.js';
import type { ReplicaHealth } from './assignment.js';

/**
 * A replica's health from its container: running with a passing health check (or with none) is healthy;
 * a run that ended (or is waiting to be restarted by its policy) has failed.
 */
export function containerHealth(record: ContainerRecord): { health: ReplicaHealth; message: string } {
  const { state } = record;
  if (state.status === 'exited' || state.status === 'restarting') {
    const why = state.error ?? `exited with code ${state.exitCode ?? 0}`;
    return { health: 'failed', message: state.status === 'restarting' ? `${why}, restarting` : why };
  }
  if (state.status === 'created') return { health: 'starting', message: 'created' };
  const checked = record.healthcheck !== undefined && record.healthcheck.Test[0] !== 'NONE' && record.healthcheck.Test.length > 0;
  if (!checked) return { health: 'healthy', message: 'running (no health check)' };
  const status = state.health?.Status ?? 'starting';
  const last = state.health?.Log.at(-1);
  const detail = last && last.ExitCode !== 0 ? `: ${last.Output.trim().slice(0, 200) || `exit code ${last.ExitCode}`}` : '';
  return { health: status, message: `running (${status})${status === 'healthy' ? '' : detail}` };
}
