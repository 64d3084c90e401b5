import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { ignoreMissing, listDirectory } from './state-files.js';

const attachmentSchema = z.object({
  mode: z.enum(['bridge', 'host', 'none']),
  netnsPath: z.string().optional(),
  ipAddress: z.string().optional(),
  gateway: z.string().optional(),
  ports: z.array(z.object({ hostIp: z.string(), hostPort: z.number(), containerPort: z.number(), protocol: z.enum(['tcp', 'udp']) })),
});

export type StoredAttachment = z.infer<typeof attachmentSchema>;

/**
 * One JSON file per attached container (`<id>.json`), written before anything is created on the host and
 * removed after everything is gone: a container with a file is one whose leftovers may need removing.
 */
export class AttachmentRecords {
  constructor(private readonly directory: string) {}

  async write(containerId: string, attachment: StoredAttachment): Promise<void> {
    await mkdir(this.directory, { recursive: true, mode: 0o700 });
    const temporary = path.join(this.directory, `.${containerId}.${randomBytes(6).toString('hex')}`);
    await writeFile(temporary, JSON.stringify(attachment, null, 2), { mode: 0o600 });
    await rename(temporary, this.fileOf(containerId));
  }

  async read(containerId: string): Promise<StoredAttachment | undefined> {
    const text = await readFile(this.fileOf(containerId), 'utf8').catch(ignoreMissing);
    return text === undefined ? undefined : attachmentSchema.parse(JSON.parse(text));
  }

  async remove(containerId: string): Promise<void> {
    await rm(this.fileOf(containerId), { force: true });
  }

  async containerIds(): Promise<string[]> {
    return (await listDirectory(this.directory))
      .filter((name) => name.endsWith('.json') && !name.startsWith('.'))
      .map((name) => name.slice(0, -'.json'.length));
  }

  private fileOf(containerId: string): string {
    return path.join(this.directory, `${containerId}.json`);
  }
}
