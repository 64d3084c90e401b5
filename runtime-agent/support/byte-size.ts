const SIZE_UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 };

/** Docker's RAMInBytes: `64m`, `1.5g`, `512MiB`, `100` (binary units); undefined when it is not a size. */
export function parseByteSize(text: string): number | undefined {
  const match = /^(\d+(?:\.\d+)*) ?([kmgtp])?i?b?$/i.exec(text.trim());
  if (!match) return undefined;
  return Math.trunc(parseFloat(match[1] ?? '') * (SIZE_UNITS[(match[2] ?? '').toLowerCase()] ?? 1));
}
