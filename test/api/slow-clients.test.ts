import { request as httpRequest } from 'node:http';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import test from 'ava';
import { ADMIN, AuthRegistry, pushImageWithToken } from '../helpers/auth-registry.js';
import { assertRegistryError, request } from '../helpers/http-client.js';
import { makeBlob, startUpload, uniqueRepo } from '../helpers/oci-content.js';
import { RegistryProcess } from '../helpers/registry-process.js';
import { closeAll, loopbackSources, openConnections, openFds, trickle, type HeldConnection } from '../helpers/slow-clients.js';

const SLOW_BODIES = 2_000;
// Long enough to open 2,000 connections, log in and push on a loaded CI machine before the cut.
const BODY_WINDOW_SECONDS = 30;
// What the registry process holds besides client sockets (Redis, log pipes, the embedded Redis's socket...).
const FD_MARGIN = 200;

function tokenBodyHead(port: number): string {
  return `POST /token HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 60000\r\n\r\n`;
}

async function waitFor(condition: () => boolean | Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await condition()) return true;
    await sleep(200);
  }
  return condition();
}

test('2,000 slow POST /token bodies held open: a login and a push still succeed, the fd count stays bounded and each slow body is cut with 408', async (t) => {
  const registry = await AuthRegistry.start({ env: { BERTH_HTTP__BODY_MIN_RATE__WINDOW_SECONDS: String(BODY_WINDOW_SECONDS) } });
  const pid = registry.process.child.pid!;
  let slow: HeldConnection[] = [];
  let stopTrickle = () => undefined as void;
  t.teardown(async () => {
    stopTrickle();
    closeAll(slow);
    await registry.destroy();
  });
  const idleFds = await openFds(pid);

  const opened = Date.now();
  // 10 source addresses x 200 connections: under the default per-address cap (256), as 10 attackers would be.
  slow = await openConnections(registry.process.port, SLOW_BODIES, loopbackSources(10), tokenBodyHead(registry.process.port));
  stopTrickle = trickle(slow, 1_000);
  t.true(
    await waitFor(async () => (await openFds(pid)) >= idleFds + SLOW_BODIES, 15_000),
    'the registry never held all the slow connections',
  );

  const token = await registry.token([`repository:held/app:push,pull`], ADMIN);
  const pushed = await pushImageWithToken(registry.url, token, 'held/app', 'v1');
  const pulled = await request(registry.url, `/v2/held/app/manifests/v1`, {
    headers: { Authorization: `Bearer ${token}`, Accept: pushed.manifest.mediaType },
  });
  t.is(pulled.status, 200);
  const heldFds = await openFds(pid);
  t.log(`2,000 connections opened, a login and a push done ${((Date.now() - opened) / 1000).toFixed(1)} s after the first opened`);
  t.true(Date.now() - opened < BODY_WINDOW_SECONDS * 1000, 'the login and push must happen while the slow bodies are held');
  t.true(
    slow.every((connection) => !connection.closed),
    'a slow body was closed before its window ended',
  );
  t.true(heldFds <= idleFds + SLOW_BODIES + FD_MARGIN, `the registry held ${heldFds} fds (idle: ${idleFds})`);
  t.log(`fds: idle ${idleFds}, with ${SLOW_BODIES} slow bodies held ${heldFds}`);

  const allCut = await waitFor(() => slow.every((connection) => connection.closed), BODY_WINDOW_SECONDS * 1000 + 10_000);
  const answers408 = slow.filter((connection) => connection.answer.startsWith('HTTP/1.1 408')).length;
  t.true(allCut, `${slow.filter((connection) => !connection.closed).length} slow bodies still open`);
  t.is(answers408, SLOW_BODIES, `first answer: ${slow[0]?.answer}`);
  t.regex(slow[0]!.answer, /"errors":\[\{"code":"UNKNOWN","message":"request body arrived slower than 1024 bytes per 30 s/);
  t.log(`cut ${answers408} slow bodies ${((Date.now() - opened) / 1000).toFixed(1)} s after they opened`);
  t.true(await waitFor(async () => (await openFds(pid)) < idleFds + FD_MARGIN, 5_000), 'the cut connections still hold fds');
});

test('connections over the per-address cap are answered 429 and over the total cap 503, without holding them', async (t) => {
  const registry = await RegistryProcess.start({
    env: { BERTH_HTTP__MAX_CONNECTIONS_PER_ADDRESS: '20', BERTH_HTTP__MAX_CONNECTIONS: '50' },
  });
  const held: HeldConnection[] = [];
  t.teardown(async () => {
    closeAll(held);
    await registry.destroy();
  });
  const keepAlive = `GET /v2/ HTTP/1.1\r\nHost: 127.0.0.1:${registry.port}\r\n\r\n`;
  const answered = (connections: HeldConnection[]) =>
    waitFor(() => connections.every((connection) => connection.answer.includes('\r\n\r\n')), 5_000);

  const fromOne = await openConnections(registry.port, 20, ['127.0.0.2'], keepAlive);
  held.push(...fromOne);
  t.true(await answered(fromOne));
  t.true(fromOne.every((connection) => connection.answer.startsWith('HTTP/1.1 200') && !connection.closed));

  const [overAddress] = await openConnections(registry.port, 1, ['127.0.0.2'], keepAlive);
  t.true(await waitFor(() => overAddress!.closed, 3_000), 'the connection over the per-address cap was not closed');
  t.regex(overAddress!.answer, /^HTTP\/1.1 429 [^]*"code":"TOOMANYREQUESTS"/);

  const others = await openConnections(registry.port, 30, loopbackSources(2, 3), keepAlive);
  held.push(...others);
  t.true(await answered(others));
  const [overTotal] = await openConnections(registry.port, 1, ['127.0.0.9'], keepAlive);
  t.true(await waitFor(() => overTotal!.closed, 3_000), 'the connection over the total cap was not closed');
  t.regex(overTotal!.answer, /^HTTP\/1.1 503 [^]*"code":"UNAVAILABLE"/);

  closeAll(held);
  t.true(
    await waitFor(async () => (await request(registry.url, '/v2/').catch(() => undefined))?.status === 200, 5_000),
    'no room again once the connections closed',
  );
});

test('a request whose headers do not all arrive within headersTimeoutSeconds is answered 408 and closed', async (t) => {
  const registry = await RegistryProcess.start({ env: { BERTH_HTTP__HEADERS_TIMEOUT_SECONDS: '2' } });
  const held: HeldConnection[] = [];
  t.teardown(async () => {
    closeAll(held);
    await registry.destroy();
  });
  const started = Date.now();
  held.push(
    ...(await openConnections(registry.port, 1, ['127.0.0.2'], `GET /v2/ HTTP/1.1\r\nHost: 127.0.0.1:${registry.port}\r\nX-Slow: `)),
  );
  const stopTrickle = trickle(held, 500);
  t.teardown(stopTrickle);
  t.true(await waitFor(() => held[0]!.closed, 10_000), 'the connection with unfinished headers is still open');
  t.regex(held[0]!.answer, /^HTTP\/1.1 408/);
  t.log(`closed ${((Date.now() - started) / 1000).toFixed(1)} s after it opened`);
});

/** PATCHes `chunks` (an async source) to the upload, as one streamed body without a declared length. */
function patchStream(location: URL, chunks: AsyncIterable<Buffer>): Promise<{ status: number; range?: string; body: string }> {
  return new Promise((resolve, reject) => {
    const patch = httpRequest(location, { method: 'PATCH', headers: { 'Content-Type': 'application/octet-stream' } }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (text: string) => (body += text));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, range: response.headers.range, body }));
    });
    patch.on('error', reject);
    Readable.from(chunks).pipe(patch);
  });
}

const MiB = 1024 * 1024;

test('a 64 MiB body streamed at a normal rate over many body windows is not cut; one that stalls is cut with 408', async (t) => {
  // Windows of 1 s that must each deliver 1 MiB: the 64 MiB body below takes several of them.
  const registry = await RegistryProcess.start({
    env: { BERTH_HTTP__BODY_MIN_RATE__WINDOW_SECONDS: '1', BERTH_HTTP__BODY_MIN_RATE__MIN_BYTES: String(MiB) },
  });
  t.teardown(() => registry.destroy());
  const repo = uniqueRepo('fast');
  const chunk = makeBlob(MiB).bytes;

  const upload = await startUpload(registry.url, repo);
  const started = Date.now();
  const fast = await patchStream(
    upload.location,
    (async function* () {
      for (let index = 0; index < 64; index++) {
        yield chunk;
        await sleep(40);
      }
    })(),
  );
  const seconds = (Date.now() - started) / 1000;
  t.is(fast.status, 202, fast.body);
  t.is(fast.range, `0-${64 * MiB - 1}`);
  t.true(seconds > 2, `the upload took ${seconds} s: it must span several body windows`);
  t.log(`64 MiB in ${seconds.toFixed(1)} s (${(64 / seconds).toFixed(0)} MiB/s) with a 1 MiB/s minimum rate`);

  const stalled = await startUpload(registry.url, repo);
  const cut = await patchStream(
    stalled.location,
    (async function* () {
      yield chunk;
      await sleep(10_000);
    })(),
  ).catch((error: Error) => ({ status: 0, range: undefined, body: error.message }));
  t.is(cut.status, 408, cut.body);
  t.regex(cut.body, /request body arrived slower than 1048576 bytes per 1 s/);
  const status = await request(registry.url, new URL(stalled.location).pathname);
  t.is(status.status, 204);
  t.is(status.headers.get('range'), '0-0', 'bytes of a cut body were acknowledged');
});

test('open upload sessions are capped per repository and per client: over the cap a POST is answered 429 TOOMANYREQUESTS', async (t) => {
  const registry = await RegistryProcess.start({ env: { BERTH_UPLOADS__MAX_PER_REPOSITORY: '3', BERTH_UPLOADS__MAX_PER_ACCOUNT: '5' } });
  t.teardown(() => registry.destroy());
  const [repoA, repoB, repoC] = [uniqueRepo('capa'), uniqueRepo('capb'), uniqueRepo('capc')];
  const post = (repo: string) => request(registry.url, `/v2/${repo}/blobs/uploads/`, { method: 'POST' });

  const first = await startUpload(registry.url, repoA);
  await startUpload(registry.url, repoA);
  await startUpload(registry.url, repoA);
  const overRepository = await post(repoA);
  const entry = await assertRegistryError(t, overRepository, 429, 'TOOMANYREQUESTS');
  t.regex(entry.message ?? '', /this repository already has 3 open uploads/);

  t.is((await request(registry.url, first.location.pathname, { method: 'DELETE' })).status, 204);
  t.is((await post(repoA)).status, 202, 'a cancelled upload still counted');

  t.is((await post(repoB)).status, 202);
  t.is((await post(repoB)).status, 202);
  const overClient = await post(repoC);
  const clientEntry = await assertRegistryError(t, overClient, 429, 'TOOMANYREQUESTS');
  t.regex(clientEntry.message ?? '', /this client already has 5 open uploads/);

  const finished = await startUploadFrom(registry.port, repoC, '127.0.0.2');
  t.is(finished, 202, 'another client was refused because of this one');
});

function startUploadFrom(port: number, repo: string, localAddress: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const post = httpRequest({ host: '127.0.0.1', port, localAddress, method: 'POST', path: `/v2/${repo}/blobs/uploads/` }, (response) => {
      response.resume();
      resolve(response.statusCode ?? 0);
    });
    post.on('error', reject);
    post.end();
  });
}
