import { readdir } from 'node:fs/promises';

/** For reads of the network state, where a file or directory not there yet is a normal answer. */
export function ignoreMissing(error: NodeJS.ErrnoException): undefined {
  if (error.code === 'ENOENT') return undefined;
  throw error;
}

export async function listDirectory(directory: string): Promise<string[]> {
  return (await readdir(directory).catch(ignoreMissing)) ?? [];
}
