import type { FileHandle } from 'node:fs/promises';
import { LogCursor } from './log-cursor.js';
import { listLogFiles } from './log-files.js';

const SCAN_BLOCK_BYTES = 64 * 1024;
const NEWLINE = 0x0a;

/**
 * A cursor at the start of the last `count` lines, which may begin in a rotated file. Files are scanned
 * backwards from their end a block at a time, counting newlines, so the last lines of a large log cost a
 * block or two of reading rather than the whole log.
 */
export async function openAtLastLines(directory: string, count: number): Promise<LogCursor | undefined> {
  let needed = count;
  let cursor: LogCursor | undefined;
  for (const file of (await listLogFiles(directory)).reverse()) {
    const older = await LogCursor.open(file);
    // Rotated away since the listing: its lines are now in the next older name, or dropped.
    if (!older) continue;
    await cursor?.close();
    cursor = older;
    const { start, lines } = await lastLinesStart(cursor.handle, needed);
    cursor.seek(start);
    needed -= lines;
    if (needed === 0) break;
  }
  return cursor;
}

/**
 * Where the last `count` complete lines of a file begin and how many there are (fewer than `count` when the
 * file holds fewer, starting at 0). An unfinished line at the end comes along but does not count.
 */
async function lastLinesStart(handle: FileHandle, count: number): Promise<{ start: number; lines: number }> {
  const block = Buffer.allocUnsafe(SCAN_BLOCK_BYTES);
  let newlines = 0;
  for (let end = (await handle.stat()).size; end > 0;) {
    const begin = Math.max(0, end - SCAN_BLOCK_BYTES);
    const { bytesRead } = await handle.read(block, 0, end - begin, begin);
    const view = block.subarray(0, bytesRead);
    for (let at = view.length; at > 0;) {
      const newline = view.lastIndexOf(NEWLINE, at - 1);
      if (newline === -1) break;
      // The first newline from the end closes the last line; the one before each line's start is one more.
      if (++newlines === count + 1) return { start: begin + newline + 1, lines: count };
      at = newline;
    }
    end = begin;
  }
  return { start: 0, lines: newlines };
}
