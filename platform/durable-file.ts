import { mkdir, open, rename } from 'node:fs/promises';
import path from 'node:path';

/**
 * Flushes a file or a directory to disk. A directory's fsync is what makes a rename or an unlink inside it
 * survive a crash; a file's is what keeps its bytes from coming back as zeros.
 */
export async function syncPath(target: string): Promise<void> {
  const handle = await open(target, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export interface CommitFileOptions {
  /** The mode of directories created for the target (as mkdir's, before the umask). */
  directoryMode?: number;
}

/**
 * Makes a complete file visible under its final name so that after a crash the name holds either nothing or
 * all of the file: its bytes on disk first, then an atomic rename (replacing anything at `target`), then both
 * directories flushed so the new name stays and the old one does not come back. Used to commit
 * content-addressed files: a name is its content's digest, so it must never point at a partial file.
 */
export async function commitFile(source: string, target: string, options: CommitFileOptions = {}): Promise<void> {
  await syncPath(source);
  const targetDirectory = path.dirname(target);
  await mkdir(targetDirectory, { recursive: true, mode: options.directoryMode });
  await rename(source, target);
  await syncPath(targetDirectory);
  const sourceDirectory = path.dirname(source);
  if (sourceDirectory !== targetDirectory) await syncPath(sourceDirectory);
}
