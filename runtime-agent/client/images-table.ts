import type { ImageSummary } from '../api.js';
import { shortDigest } from '../digest.js';
import { humanAge, humanSize } from './human-format.js';

const HEADERS = ['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE'];
const COLUMN_GAP = 3;

/** `docker images` output: left-aligned columns three spaces apart. */
export function imagesTable(images: readonly ImageSummary[], now = Date.now()): string {
  const rows = images.map((image) => [image.repository, image.tag ?? '<none>', shortDigest(image.id), humanAge(image.created, now), humanSize(image.size)]);
  const widths = HEADERS.map((header, column) => Math.max(header.length, ...rows.map((row) => (row[column] ?? '').length)));
  const format = (row: string[]) =>
    row
      .map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd((widths[column] ?? 0) + COLUMN_GAP)))
      .join('')
      .trimEnd();
  return [HEADERS, ...rows].map(format).join('\n');
}
