/**
 * Durations as Go writes and reads them (time.ParseDuration, Duration.String), in nanoseconds: docker's health
 * flags and `--since`, a Dockerfile's HEALTHCHECK options and compose files take them, and docker's probe
 * timeout message prints them.
 */

const UNIT_NANOSECONDS: Record<string, number> = { ns: 1, us: 1e3, µs: 1e3, μs: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };
const TERM = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)?/y;

/** Nanoseconds of `300ms`, `1.5h`, `2h45m`, `-1s`, `0`; Go's message when it is not a duration. */
export function parseGoDuration(text: string): { nanoseconds: number } | { error: string } {
  const invalid = { error: `time: invalid duration ${JSON.stringify(text)}` };
  const sign = text.startsWith('-') ? -1 : 1;
  const body = text.replace(/^[+-]/, '');
  if (body === '0') return { nanoseconds: 0 };
  if (body === '') return invalid;
  let total = 0;
  TERM.lastIndex = 0;
  while (TERM.lastIndex < body.length) {
    const match = TERM.exec(body);
    if (!match) return invalid;
    const [, amount = '', unit] = match;
    if (unit === undefined) return { error: `time: missing unit in duration ${JSON.stringify(text)}` };
    total += Number(amount) * (UNIT_NANOSECONDS[unit] ?? 0);
  }
  return { nanoseconds: sign * Math.round(total) };
}

/** Go's Duration.String(): `200ms`, `1.5s`, `2m0s`, `1h0m0s`, `0s`. */
export function formatGoDuration(nanoseconds: number): string {
  if (nanoseconds === 0) return '0s';
  const sign = nanoseconds < 0 ? '-' : '';
  let rest = Math.abs(nanoseconds);
  if (rest < 1e3) return `${sign}${rest}ns`;
  if (rest < 1e6) return `${sign}${decimal(rest / 1e3)}µs`;
  if (rest < 1e9) return `${sign}${decimal(rest / 1e6)}ms`;
  const hours = Math.floor(rest / 3600e9);
  rest -= hours * 3600e9;
  const minutes = Math.floor(rest / 60e9);
  rest -= minutes * 60e9;
  return `${sign}${hours > 0 ? `${hours}h` : ''}${hours > 0 || minutes > 0 ? `${minutes}m` : ''}${decimal(rest / 1e9)}s`;
}

/** At most 9 decimals, without trailing zeros (as Go prints fractions of a unit). */
function decimal(value: number): string {
  return String(Number(value.toFixed(9)));
}
