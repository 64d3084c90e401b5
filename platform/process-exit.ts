import { constants } from 'node:os';

/** A child's exit as a shell reports it: its code, or 128 plus the number of the signal that ended it. */
export function exitCodeOf(code: number | null, signal: NodeJS.Signals | null): number {
  return code ?? 128 + (signal ? constants.signals[signal] : 0);
}
