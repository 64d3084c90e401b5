import { mkdir, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { readJsonIfExists, writeJsonAtomic, writeJsonWhole } from '../support/json-file.js';
import type { ContainerRecord } from './container-record.js';

const RECORD_FILE = 'container.json';

/**
 * Containers as directories `<root>/<id>/` holding the record (container.json), the OCI bundle, the
 * writable layer and the logs. The record is rewritten atomically on each change.
 */
export class ContainerStore {
  constructor(readonly root: string) {}

  async init(): Promise<void> {
    await mkdir(this.root, { recursive: true, mode: 0o700 });
  }

  directory(id: string): string {
    return path.join(this.root, id);
  }

  async create(record: ContainerRecord): Promise<void> {
    await mkdir(this.directory(record.id), { mode: 0o700 });
    await this.save(record);
  }

  /**
   * A `--rm` container's record is not fsynced: the agent removes such a container when it comes back after
   * a host crash whatever its record said, so flushing it would only delay the run's first output (twice: at
   * the create and at the start). Such a crash may leave its record empty or missing: `list` clears those.
   */
  save(record: ContainerRecord): Promise<void> {
    return (record.autoRemove ? writeJsonWhole : writeJsonAtomic)(path.join(this.directory(record.id), RECORD_FILE), record);
  }

  /**
   * Every container's record. A directory without a readable record (an unflushed `--rm` record after a host
   * crash, or a daemon crash between the directory and its first record) holds no run and nothing acknowledged:
   * it is removed.
   */
  async list(): Promise<ContainerRecord[]> {
    const names = await readdir(this.root);
    const records = await Promise.all(names.map((name) => this.readOrClear(name)));
    return records.filter((record): record is ContainerRecord => record !== undefined);
  }

  async remove(id: string): Promise<void> {
    await rm(this.directory(id), { recursive: true, force: true });
  }

  private async readOrClear(id: string): Promise<ContainerRecord | undefined> {
    const record = await readJsonIfExists<ContainerRecord>(path.join(this.directory(id), RECORD_FILE)).catch((error: unknown) => {
      if (error instanceof SyntaxError) return undefined;
      throw error;
    });
    if (record === undefined) await this.remove(id);
    return record;
  }
}
