import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { readJsonIfExists, writeJsonAtomic } from '../support/json-file.js';

const savedSchema = z.object({ registry: z.string(), node: z.string(), credential: z.string().min(1) });

/**
 * The credential the registry issued when this agent joined as a node, kept (mode 0600, like the agent's
 * other secrets) at `<data-dir>/node/credential.json`: a restarted agent resumes as that node with it,
 * since the registry refuses a join under the name of a node it saw within its grace period.
 */
export class NodeCredentialFile {
  private readonly file: string;

  constructor(dataDir: string) {
    this.file = path.join(dataDir, 'node', 'credential.json');
  }

  /** The credential saved for this registry and node name, if any (one for another is not this node's). */
  async read(registry: string, node: string): Promise<string | undefined> {
    const saved = savedSchema.safeParse(await readJsonIfExists(this.file).catch(() => undefined));
    return saved.success && saved.data.registry === registry && saved.data.node === node ? saved.data.credential : undefined;
  }

  async save(registry: string, node: string, credential: string): Promise<void> {
    await mkdir(path.dirname(this.file), { recursive: true, mode: 0o700 });
    await writeJsonAtomic(this.file, { registry, node, credential });
  }
}
