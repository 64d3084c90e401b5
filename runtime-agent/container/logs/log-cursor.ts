import { open, type FileHandle } from 'node:fs/promises';
import { inodeOf, listLogFiles, logFilePath, type LogFile } from './log-files.js';

const READ_BLOCK_BYTES = 64 * 1024;
const NEWLINE = 0x0a;

/**
 * One log file held open and read forward from a position. Held open, it stays readable whatever rotation
 * does to its name (renamed, or dropped: the inode lives on while open), and its inode says where it went.
 */
export class LogCursor {
  private position = 0;
  /** Bytes after the last newline read: a line the writer has not finished yet. */
  private pending = Buffer.alloc(0);

  private constructor(
    readonly handle: FileHandle,
    readonly inode: number,
  ) {}

  /** Opens `file` if it is still the file listed (a rotation may have put another one under its name). */
  static async open(file: LogFile): Promise<LogCursor | undefined> {
    const handle = await open(file.path, 'r').catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return undefined;
      throw error;
    });
    if (!handle) return undefined;
    if ((await handle.stat()).ino === file.inode) return new LogCursor(handle, file.inode);
    await handle.close();
    return undefined;
  }

  /** Continues at `position` (the start of a line). */
  seek(position: number): void {
    this.position = position;
    this.pending = Buffer.alloc(0);
  }

  /** The complete lines (without '\n') from the position to the current end of the file, a block at a time. */
  async *lines(): AsyncGenerator<Buffer> {
    for (;;) {
      const block = Buffer.allocUnsafe(READ_BLOCK_BYTES);
      const { bytesRead } = await this.handle.read(block, 0, READ_BLOCK_BYTES, this.position);
      if (bytesRead === 0) return;
      this.position += bytesRead;
      const data = Buffer.concat([this.pending, block.subarray(0, bytesRead)]);
      let start = 0;
      for (let newline = data.indexOf(NEWLINE); newline !== -1; newline = data.indexOf(NEWLINE, start)) {
        yield data.subarray(start, newline);
        start = newline + 1;
      }
      this.pending = data.subarray(start);
    }
  }

  /** Whether this is still the file the writer appends to. */
  async isLive(directory: string): Promise<boolean> {
    return (await inodeOf(logFilePath(directory, 0))) === this.inode;
  }

  close(): Promise<void> {
    return this.handle.close();
  }
}

/**
 * Opens the file that comes after the one with inode `previous` (the oldest when there is none, or when that
 * one was dropped, the reader having fallen more than maxFiles behind), or undefined when there is none yet:
 * the writer is between renaming the live file and creating the next one.
 */
export async function openNextLogFile(directory: string, previous: number | undefined): Promise<LogCursor | undefined> {
  for (;;) {
    const files = await listLogFiles(directory);
    const index = files.findIndex((file) => file.inode === previous);
    const next = files[index + 1];
    if (!next) return undefined;
    const cursor = await LogCursor.open(next);
    // Not opened: a rotation moved it between the listing and the open; list again.
    if (cursor) return cursor;
  }
}
