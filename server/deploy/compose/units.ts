import { parseGoDuration } from '../../../platform/go-duration.js';

/**
 * The compose specification's value formats: durations (`1m30s`, `500ms`, `1.5h`: Go's time.ParseDuration, as
 * docker compose reads them) and byte values (`512m`, `1gb`, or a plain number of bytes).
 */

/** Milliseconds, or undefined when `text` is not a duration (or is negative). */
export function parseDuration(text: string): number | undefined {
  const parsed = parseGoDuration(text);
  return 'error' in parsed || parsed.nanoseconds < 0 ? undefined : Math.round(parsed.nanoseconds / 1e6);
}

const BYTE_VALUE = /^(\d+(?:\.\d+)?)\s*([kmg]?b?)$/i;
const BYTE_UNIT: Record<string, number> = { '': 1, b: 1, k: 1024, kb: 1024, m: 1024 ** 2, mb: 1024 ** 2, g: 1024 ** 3, gb: 1024 ** 3 };

/** Bytes, or undefined when `value` is neither a byte count nor a compose byte value. */
export function parseBytes(value: string | number): number | undefined {
  if (typeof value === 'number') return Number.isInteger(value) && value >= 0 ? value : undefined;
  const match = BYTE_VALUE.exec(value.trim());
  if (!match) return undefined;
  return Math.floor(Number(match[1]) * BYTE_UNIT[match[2]!.toLowerCase()]!);
}
