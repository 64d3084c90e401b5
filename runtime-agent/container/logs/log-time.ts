/** RFC 3339 timestamps with nanoseconds, as docker's json-file log driver and `docker logs -t` print them. */

const NANOS_PER_MILLI = 1_000_000n;

let lastIssued = 0n;

/**
 * Now, in nanoseconds since the epoch. Date has millisecond resolution, so the sub-millisecond digits come from
 * the monotonic clock; the result never goes below the previous one, so entries written in order carry
 * non-decreasing times even when those digits wrap within a millisecond.
 */
export function nowNanos(): bigint {
  const wall = BigInt(Date.now()) * NANOS_PER_MILLI + (process.hrtime.bigint() % NANOS_PER_MILLI);
  lastIssued = wall > lastIssued ? wall : lastIssued + 1n;
  return lastIssued;
}

/** `2024-05-01T12:00:00.123456789Z`: always nine fraction digits (docker's RFC3339NanoFixed), so lines align. */
export function formatRfc3339Nano(nanos: bigint): string {
  const millis = nanos / NANOS_PER_MILLI;
  const fraction = (nanos % 1_000_000_000n).toString().padStart(9, '0');
  return `${new Date(Number(millis)).toISOString().slice(0, 19)}.${fraction}Z`;
}

const RFC3339 = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/;

/** Nanoseconds since the epoch, for any RFC 3339 time (fraction of any length up to nine digits, any offset). */
export function parseRfc3339Nano(text: string): bigint {
  const match = RFC3339.exec(text);
  const seconds = match ? Date.parse(`${match[1]}${match[3]}`) : NaN;
  if (!match || Number.isNaN(seconds)) throw new Error(`not an RFC 3339 time: ${text}`);
  return BigInt(seconds) * NANOS_PER_MILLI + BigInt((match[2] ?? '').padEnd(9, '0'));
}
