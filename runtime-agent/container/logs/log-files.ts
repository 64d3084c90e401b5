import { readdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';

/**
 * The set of files one container's log occupies: `container.log` (being written) and its rotated
 * predecessors `container.log.1` (the most recent) to `container.log.<maxFiles - 1>` (the oldest).
 */
export const LOG_FILE_NAME = 'container.log';

export interface LogFile {
  path: string;
  /** 0 for the live file, n for `container.log.n`. */
  generation: number;
  /** Identifies the file across renames: a reader holding it open finds where it went by this. */
  inode: number;
}

const LOG_FILE_PATTERN = new RegExp(`^${LOG_FILE_NAME.replace('.', '\\.')}(?:\\.([1-9]\\d*))?$`);

export function logFilePath(directory: string, generation: number): string {
  return path.join(directory, generation === 0 ? LOG_FILE_NAME : `${LOG_FILE_NAME}.${generation}`);
}

/**
 * The log files present, oldest first (the live file last). A rotation renames files one at a time, so a
 * listing taken while it runs can show a file under two names, or two files in the wrong order; a listing is
 * only returned once the next one is identical, which proves every name held its file from the first look
 * until the second, so both describe one moment.
 */
export async function listLogFiles(directory: string): Promise<LogFile[]> {
  let listing = await listOnce(directory);
  for (;;) {
    const again = await listOnce(directory);
    if (sameListing(listing, again)) return listing;
    listing = again;
  }
}

async function listOnce(directory: string): Promise<LogFile[]> {
  const files: LogFile[] = [];
  for (const generation of await generationsIn(directory)) {
    const inode = await inodeOf(logFilePath(directory, generation));
    if (inode !== undefined) files.push({ path: logFilePath(directory, generation), generation, inode });
  }
  return files;
}

function sameListing(a: LogFile[], b: LogFile[]): boolean {
  return a.length === b.length && a.every((file, i) => file.generation === b[i]!.generation && file.inode === b[i]!.inode);
}

/** Generations of the files present, oldest first. */
async function generationsIn(directory: string): Promise<number[]> {
  const generations: number[] = [];
  for (const name of await readdir(directory)) {
    const match = LOG_FILE_PATTERN.exec(name);
    if (match) generations.push(Number(match[1] ?? 0));
  }
  return generations.sort((a, b) => b - a);
}

/** The inode at a path, or undefined if nothing is there (any more). */
export async function inodeOf(file: string): Promise<number | undefined> {
  try {
    return (await stat(file)).ino;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/**
 * Moves every file one generation older, oldest first, dropping those that would reach `maxFiles` (with
 * maxFiles 1, the live file itself), so the live name is free for a new file. Renames rather than copies: a
 * reader holding a file open keeps reading it under its new name.
 */
export async function rotateLogFiles(directory: string, maxFiles: number): Promise<void> {
  for (const generation of await generationsIn(directory)) {
    const file = logFilePath(directory, generation);
    if (generation + 1 >= maxFiles) await rm(file, { force: true });
    else await rename(file, logFilePath(directory, generation + 1));
  }
}
