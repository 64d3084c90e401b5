const COLUMN_GAP = 3;

/** docker's table output: left-aligned columns three spaces apart, no trailing blanks. */
export function table(headers: readonly string[], rows: readonly string[][]): string {
  const widths = headers.map((header, column) => Math.max(header.length, ...rows.map((row) => (row[column] ?? '').length)));
  const format = (row: readonly string[]) =>
    row
      .map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd((widths[column] ?? 0) + COLUMN_GAP)))
      .join('')
      .trimEnd();
  return [headers, ...rows].map(format).join('\n');
}
