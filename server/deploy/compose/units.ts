/**
 * The compose specification's value formats: durations (`1m30s`, `500ms`, `1.5h`: Go's time.ParseDuration
 * units from us to h, several parts in a row) and byte values (`512m`, `1gb`, or a plain number of bytes).
 */
const DURATION_PART = /(\d+(?:\.\d+)?|\.\d+)(us|µs|ms|s|m|h)/gy;
const DURATION_UNIT_MS: Record<string, number> = { us: 0.001, µs: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Milliseconds, or undefined when `text` is not a compose duration. */
export function parseDuration(text: string): number | undefined {
  if (text === '0') return 0;
  DURATION_PART.lastIndex = 0;
  let total = 0;
  let consumed = 0;
  for (let match = DURATION_PART.exec(text); match; match = DURATION_PART.exec(text)) {
    total += Number(match[1]) * DURATION_UNIT_MS[match[2]!]!;
    consumed = DURATION_PART.lastIndex;
  }
  return consumed > 0 && consumed === text.length ? Math.round(total) : undefined;
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
