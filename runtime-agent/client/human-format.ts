/** Sizes and ages the way docker prints them. */

const SIZE_UNITS = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];

/** Decimal units with 3 significant digits, like docker's `units.HumanSize`: `1.23MB`. */
export function humanSize(bytes: number): string {
  return scaledSize(bytes, 1000, SIZE_UNITS, 3);
}

function scaledSize(bytes: number, base: number, units: readonly string[], digits: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= base && unit < units.length - 1) {
    value /= base;
    unit++;
  }
  return `${Number(value.toPrecision(digits))}${units[unit]}`;
}

/** `About a minute ago`, `3 hours ago`, `2 weeks ago`, like docker's `units.HumanDuration` + " ago". */
export function humanAge(iso: string | undefined, now = Date.now()): string {
  const since = humanSince(iso, now);
  return since === undefined ? 'N/A' : `${since} ago`;
}

/** The time since `iso` as docker's `units.HumanDuration` words it (`3 hours`), undefined when unknown. */
export function humanSince(iso: string | undefined, now = Date.now()): string | undefined {
  const time = iso ? Date.parse(iso) : Number.NaN;
  if (Number.isNaN(time)) return undefined;
  const seconds = Math.max(0, (now - time) / 1000);
  const minutes = seconds / 60;
  const hours = minutes / 60;
  const days = hours / 24;
  let text: string;
  if (seconds < 1) text = 'Less than a second';
  else if (seconds < 60) text = `${Math.floor(seconds)} seconds`;
  else if (minutes < 2) text = 'About a minute';
  else if (minutes < 60) text = `${Math.floor(minutes)} minutes`;
  else if (hours < 2) text = 'About an hour';
  else if (hours < 48) text = `${Math.floor(hours)} hours`;
  else if (days < 14) text = `${Math.floor(days)} days`;
  else if (days < 60) text = `${Math.floor(days / 7)} weeks`;
  else if (days < 365 * 2) text = `${Math.floor(days / 30)} months`;
  else text = `${Math.floor(days / 365)} years`;
  return text;
}

const BINARY_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/** Binary units with 4 significant digits, like docker's `units.BytesSize` (`stats` memory): `1.5MiB`. */
export function binarySize(bytes: number): string {
  return scaledSize(bytes, 1024, BINARY_UNITS, 4);
}
