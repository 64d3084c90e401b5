import { randomBytes } from 'node:crypto';
import { open, readFile, rename } from 'node:fs/promises';

/**
 * Replaces `file` with `document` as JSON: written to a temporary file, fsynced, renamed over the old one,
 * so a reader (or a crash) sees the old document or the new one, never half of one.
 */
export function writeJsonAtomic(file: string, document: unknown): Promise<void> {
  return writeTextAtomic(file, JSON.stringify(document, null, 2));
}

/**
 * Replaces `file` with `document` as writeJsonAtomic does, without the fsync: a reader sees the old document or
 * the new one, but a host crash may leave neither. For a file that does not outlive its container's run.
 */
export function writeJsonWhole(file: string, document: unknown): Promise<void> {
  return replaceFile(file, JSON.stringify(document, null, 2), false);
}

/** Replaces `file` with `text` the same way: the old text or the new one, never half of one. */
export function writeTextAtomic(file: string, text: string): Promise<void> {
  return replaceFile(file, text, true);
}

async function replaceFile(file: string, text: string, sync: boolean): Promise<void> {
  const temporary = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  const handle = await open(temporary, 'w', 0o600);
  try {
    await handle.writeFile(text);
    if (sync) await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temporary, file);
}

/** The parsed document, or undefined when the file does not exist. */
export async function readJsonIfExists<T>(file: string): Promise<T | undefined> {
  const text = await readFile(file, 'utf8').catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw error;
  });
  return text === undefined ? undefined : (JSON.parse(text) as T);
}
