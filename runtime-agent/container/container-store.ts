import { mkdir, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { readJsonIfExists, writeJsonAtomic } from '../support/json-file.js';
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

  save(record: ContainerRecord): Promise<void> {
    return writeJsonAtomic(path.join(this.directory(record.id), RECORD_FILE), record);
  }

  async list(): Promise<ContainerRecord[]> {
    const names = await readdir(this.root);
    const records = await Promise.all(names.map((name) => readJsonIfExists<ContainerRecord>(path.join(this.root, name, RECORD_FILE))));
    return records.filter((record): record is ContainerRecord => record !== undefined);
  }

  async remove(id: string): Promise<void> {
    await rm(this.directory(id), { recursive: true, force: true });
  }
}
