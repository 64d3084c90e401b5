import test from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DockerDaemon } from './dockerd.js';
import { PodmanEnvironment } from './podman.js';

/** A registry and a client environment (dockerd, podman) shared by the tests of one file. */
export interface ClientTestbed<R, C> {
  readonly registry: R;
  readonly client: C;
  /** A directory of the file's own for images, layouts and client configs. */
  readonly workDir: string;
}

interface TestbedParts<R, C> {
  /** Names the work directory (`berth-<name>-XXXXXX` under the temp dir). */
  name: string;
  startRegistry: () => Promise<R>;
  startClient: () => Promise<C>;
  stopClient: (client: C) => Promise<void>;
}

/**
 * Starts the registry and the client at once before the file's tests and removes both and the work directory
 * after them. Each is kept as soon as it exists, so that the cleanup stops it even if the other failed to start.
 * The hook is serial: ava starts a file's other `before` hooks only after it, so they can use the testbed.
 */
export function clientTestbed<R extends { destroy(): Promise<void> }, C>(parts: TestbedParts<R, C>): ClientTestbed<R, C> {
  let registry: R | undefined;
  let client: C | undefined;
  let workDir: string | undefined;
  test.serial.before(async () => {
    workDir = await mkdtemp(path.join(tmpdir(), `berth-${parts.name}-`));
    await Promise.all([
      parts.startRegistry().then((started) => (registry = started)),
      parts.startClient().then((started) => (client = started)),
    ]);
  });
  test.after.always(async () => {
    if (client !== undefined) await parts.stopClient(client);
    await registry?.destroy();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });
  return {
    get registry() {
      return startedBeforeUse(registry);
    },
    get client() {
      return startedBeforeUse(client);
    },
    get workDir() {
      return startedBeforeUse(workDir);
    },
  };
}

/** A registry and a dockerd of the file's own. */
export function dockerTestbed<R extends { destroy(): Promise<void> }>(
  name: string,
  startRegistry: () => Promise<R>,
): ClientTestbed<R, DockerDaemon> {
  return clientTestbed({ name, startRegistry, startClient: () => DockerDaemon.start(), stopClient: (daemon) => daemon.stop() });
}

/** A registry and a podman environment (storage, config) of the file's own. */
export function podmanTestbed<R extends { destroy(): Promise<void> }>(
  name: string,
  startRegistry: () => Promise<R>,
): ClientTestbed<R, PodmanEnvironment> {
  return clientTestbed({ name, startRegistry, startClient: () => PodmanEnvironment.create(), stopClient: (podman) => podman.destroy() });
}

function startedBeforeUse<T>(value: T | undefined): T {
  if (value === undefined) throw new Error('the client testbed is used before test.before ran');
  return value;
}
