import test from 'ava';
import { serverErrorLines } from './http-client.js';
import { RegistryProcess } from './registry-process.js';

export interface SharedRegistry {
  readonly url: string;
  readonly logs: string;
}

/**
 * One registry for all the tests of a file: started before them, removed after them, and the file fails if
 * any request made the registry log an internal error (the only way to see a 500 a client never read).
 */
export function sharedRegistry(): SharedRegistry {
  let registry: RegistryProcess | undefined;
  const started = (): RegistryProcess => {
    if (!registry) throw new Error('the shared registry is used before test.before ran');
    return registry;
  };
  test.before(async () => {
    registry = await RegistryProcess.start();
  });
  test.after('no request in this file made the registry log an internal error', (t) => {
    t.deepEqual(serverErrorLines(started().logs), []);
  });
  test.after.always(async () => {
    await registry?.destroy();
  });
  return {
    get url() {
      return started().url;
    },
    get logs() {
      return started().logs;
    },
  };
}
