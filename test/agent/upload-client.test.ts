import test from 'ava';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { spawnUntilListening, type CapturedProcess } from '../../platform/process.js';
import { HttpUploadClient } from '../../runtime-agent/registry/upload-client.js';
import { freePort } from '../helpers/free-port.js';
import { request } from '../helpers/http-client.js';
import { RegistryProcess } from '../helpers/registry-process.js';

/**
 * The agent's push of a small blob (an image config) in one request, against the two answers the distribution
 * spec allows to a POST ?digest=: Berth stores it at once (201); CNCF Distribution (Debian's docker-registry)
 * only opens a session (202), and the bytes then go in that session's PUT.
 */

let berth: RegistryProcess;
let distribution: { process: CapturedProcess; host: string };
let workDir: string;

test.before(async () => {
  workDir = await mkdtemp(path.join(tmpdir(), 'berth-upload-client-'));
  const port = await freePort();
  const config = path.join(workDir, 'distribution.yml');
  await writeFile(config, `version: 0.1\nstorage: {filesystem: {rootdirectory: ${workDir}/data}}\nhttp: {addr: 127.0.0.1:${port}}\n`);
  const [registry, started] = await Promise.all([
    RegistryProcess.start(),
    spawnUntilListening('docker-registry', ['serve', config], {
      name: 'docker-registry',
      timeoutMs: 30_000,
      listening: (output) => (output.includes('listening on') ? true : undefined),
    }),
  ]);
  berth = registry;
  distribution = { process: started.process, host: `127.0.0.1:${port}` };
});

test.after.always(async () => {
  await berth?.destroy();
  await distribution?.process.stop();
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

for (const [name, host] of [
  ['Berth (201 to the POST)', () => berth.host],
  ['Distribution (202: a session, then its PUT)', () => distribution.host],
] as const) {
  test(`a small blob uploaded in one POST ?digest= is served back byte for byte by ${name}`, async (t) => {
    const bytes = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', registry: name }));
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    const client = new HttpUploadClient(host(), 'team/small', {
      insecureRegistries: [host()],
      credentials: undefined,
      mountSource: undefined,
      bearerToken: undefined,
    });
    await client.uploadSmallBlob(digest, bytes);
    t.true(await client.hasBlob(digest));
    const served = await request(`http://${host()}`, `/v2/team/small/blobs/${digest}`);
    t.is(served.status, 200);
    t.deepEqual(Buffer.from(await served.arrayBuffer()), bytes);
  });
}
