import type { Header } from 'tar-stream';
import { LayerFormatError } from './decompression.js';

/** One run of data in a sparse file; everything between runs is a hole. */
export interface SparseSegment {
  offset: number;
  length: number;
}

/**
 * A GNU sparse file stored in PAX form: its real name and size, and its data runs, given in the PAX
 * header (format 0.1) or at the start of the entry's data (format 1.0, GNU tar's default).
 */
export interface SparseLayout {
  name: string;
  realSize: number;
  segments: SparseSegment[] | 'in-data';
}

/** A map bigger than this is refused rather than buffered (GNU tar writes a few bytes per data run). */
const MAX_MAP_BYTES = 1024 * 1024;
const BLOCK = 512;

/**
 * The sparse layout of an entry, undefined for a plain one. tar-stream does not know sparse files: it shows
 * a PAX sparse file as a regular file named `GNUSparseFile.N/name` holding the packed data runs, and an old
 * GNU sparse entry (type `S`) with no type at all; formats that cannot be read back exactly are refused.
 */
export function sparseLayout(header: Header): SparseLayout | undefined {
  const pax = (header.pax ?? {}) as Record<string, string | undefined>;
  if (header.type === null)
    throw new LayerFormatError(
      `entry ${JSON.stringify(header.name)} has an unknown tar type (an old GNU sparse file, type S, is not supported: write the layer with --format=pax)`,
    );
  const version =
    pax['GNU.sparse.major'] !== undefined
      ? `${pax['GNU.sparse.major']}.${pax['GNU.sparse.minor'] ?? ''}`
      : pax['GNU.sparse.map'] !== undefined
        ? '0.1'
        : pax['GNU.sparse.offset'] !== undefined
          ? '0.0'
          : undefined;
  if (version === undefined) return undefined;
  const name = pax['GNU.sparse.name'] ?? header.name;
  if (version === '1.0') return { name, realSize: sizeNumber(pax['GNU.sparse.realsize'], name), segments: 'in-data' };
  if (version === '0.1')
    return {
      name,
      realSize: sizeNumber(pax['GNU.sparse.size'], name),
      segments: segmentsOf(numbersOf(pax['GNU.sparse.map'] ?? '', ',', name), name),
    };
  throw new LayerFormatError(
    `entry ${JSON.stringify(name)} is a PAX sparse file of format ${version}, which is not supported (1.0 and 0.1 are)`,
  );
}

function sizeNumber(text: string | undefined, name: string): number {
  const value = Number(text);
  if (text === undefined || !/^\d+$/.test(text) || !Number.isSafeInteger(value))
    throw new LayerFormatError(`sparse entry ${JSON.stringify(name)} has an invalid size ${JSON.stringify(text)}`);
  return value;
}

function numbersOf(text: string, separator: string, name: string): number[] {
  return text === '' ? [] : text.split(separator).map((part) => sizeNumber(part, name));
}

function segmentsOf(numbers: number[], name: string): SparseSegment[] {
  if (numbers.length % 2 !== 0) throw new LayerFormatError(`sparse entry ${JSON.stringify(name)} has an odd number of map values`);
  const segments: SparseSegment[] = [];
  for (let index = 0; index < numbers.length; index += 2)
    segments.push({ offset: numbers[index] as number, length: numbers[index + 1] as number });
  return segments;
}

/** Checks that data runs are in order, do not overlap and end within the file. */
export function checkSegments(segments: readonly SparseSegment[], realSize: number, name: string): void {
  let end = 0;
  for (const segment of segments) {
    if (segment.offset < end || segment.offset + segment.length > realSize)
      throw new LayerFormatError(`sparse entry ${JSON.stringify(name)} has a data run outside the file or out of order`);
    end = segment.offset + segment.length;
  }
}

/**
 * Reads a format 1.0 map from the start of the entry's data: decimal numbers, one a line (the count, then an
 * offset and a length per run), padded to a 512-byte block. Returns undefined until the whole map has
 * arrived; then the runs and the bytes of `chunk` that are file data.
 */
export class InDataSparseMap {
  private text = '';
  private consumed = 0;

  constructor(private readonly name: string) {}

  take(chunk: Buffer): { segments: SparseSegment[]; rest: Buffer } | undefined {
    this.text += chunk.toString('latin1');
    this.consumed += chunk.length;
    const lines = this.text.split('\n');
    const count = lines.length > 1 ? sizeNumber(lines[0], this.name) : Infinity;
    const mapBytes = lines.length < 2 + 2 * count ? Infinity : lines.slice(0, 1 + 2 * count).join('\n').length + 1;
    const dataStart = Math.ceil(mapBytes / BLOCK) * BLOCK;
    if (this.text.length < dataStart) {
      if (this.text.length > MAX_MAP_BYTES)
        throw new LayerFormatError(`sparse entry ${JSON.stringify(this.name)} has a map larger than ${MAX_MAP_BYTES} bytes`);
      return undefined;
    }
    const segments = segmentsOf(
      lines.slice(1, 1 + 2 * count).map((line) => sizeNumber(line, this.name)),
      this.name,
    );
    return { segments, rest: chunk.subarray(chunk.length - (this.consumed - dataStart)) };
  }
}
