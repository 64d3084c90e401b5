import { mkdir, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { volumeDirectory } from '../spec/oci-spec.js';

/** Named volumes: `<root>/<name>/_data`, as docker lays them out. They outlive the containers that mount them. */
export class VolumeStore {
  constructor(readonly root: string) {}

  directory(name: string): string {
    return volumeDirectory(this.root, name);
  }

  async list(): Promise<string[]> {
    const names = await readdir(this.root).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return [];
      throw error;
    });
    return names.sort();
  }

  /** Creates the volume unless it exists; says whether it was created (a new volume is seeded from the image). */
  async create(name: string): Promise<boolean> {
    const directory = this.directory(name);
    await mkdir(path.dirname(directory), { recursive: true, mode: 0o700 });
    return mkdir(directory, { mode: 0o755 }).then(
      () => true,
      (error: NodeJS.ErrnoException) => {
        if (error.code === 'EEXIST') return false;
        throw error;
      },
    );
  }

  async remove(name: string): Promise<void> {
    await rm(path.dirname(this.directory(name)), { recursive: true, force: true });
  }
}
