import { execFile } from 'node:child_process';
import { mkdtemp, open, rm, rmdir } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import test, { type ExecutionContext } from 'ava';
import { eventually } from '../helpers/eventually.js';
import { REQUEST_TIMEOUT_MS, readBytes, request } from '../helpers/http-client.js';
import { blobOf, makeBlob, pushBlob, pushBlobInChunks, pushImage, putManifest, startUpload, type Blob } from '../helpers/oci-content.js';
import { RegistryProcess } from '../helpers/registry-process.js';

const run = promisify(execFile);
const MiB = 1 << 20;
const UNHANDLED = /unhandled promise rejection/;

/** A tmpfs of `sizeMiB` mounted on a fresh directory, unmounted and removed in the test's teardown. */
async function smallDisk(t: ExecutionContext, sizeMiB: number): Promise<string> {
  const mountPoint = await mkdtemp(path.join(tmpdir(), 'berth-fix-storage-faults-'));
  await run('mount', ['-t', 'tmpfs', '-o', `size=${sizeMiB}m`, 'berth-fix-storage-faults', mountPoint]);
  t.teardown(async () => {
    await run('umount', ['--lazy', mountPoint]).catch(() => undefined);
    await rmdir(mountPoint).catch(() => undefined);
  });
  return mountPoint;
}

/** Writes a file until the disk is full (at most `limitMiB`), leaving `leaveMiB` free; returns its path. */
async function fill(directory: string, limitMiB: number, leaveMiB = 0): Promise<string> {
  const file = path.join(directory, 'filler');
  const handle = await open(file, 'w');
  const { stdout } = await run('df', ['--output=avail', '-B1', directory]);
  const target = Math.max(Number(stdout.trim().split('\n')[1]) - leaveMiB * MiB, 0);
  const block = Buffer.alloc(MiB, 1);
  try {
    for (let written = 0, step = 0; written < target && step < limitMiB + 1; step += 1) {
      const length = Math.min(MiB, target - written);
      written += (await handle.write(block, 0, length)).bytesWritten;
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
  } finally {
    await handle.close();
  }
  return file;
}

interface PacedResponse {
  status: number;
  body: string;
  /** Bytes of the body sent before the answer came. */
  sent: number;
}

/**
 * Sends a request whose body goes out in `pieceBytes` pieces with `pauseMs` between them (0: as fast as the
 * socket takes it) while reading the answer; stops sending once it has the whole answer, like curl or Go's
 * HTTP client do on an early response.
 */
function sendPaced(
  baseUrl: string,
  options: { method: string; path: string; headers: string[]; body: Buffer; pieceBytes: number; pauseMs: number },
): Promise<PacedResponse> {
  const { hostname, port } = new URL(baseUrl);
  const socket = connect(Number(port), hostname);
  let received = Buffer.alloc(0);
  let answer: PacedResponse | undefined;
  let sent = 0;
  return new Promise<PacedResponse>((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer to ${options.method} ${options.path} within ${REQUEST_TIMEOUT_MS} ms (${sent} bytes sent)`));
    }, REQUEST_TIMEOUT_MS);
    const finish = (result: PacedResponse) => {
      answer = result;
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    socket.on('data', (data: Buffer) => {
      received = Buffer.concat([received, data]);
      const headEnd = received.indexOf('\r\n\r\n');
      if (headEnd < 0) return;
      const head = received.subarray(0, headEnd).toString('latin1');
      const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
      const body = received.subarray(headEnd + 4);
      if (body.length >= length) finish({ status: Number(head.split(' ')[1]), body: body.subarray(0, length).toString('utf8'), sent });
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      if (!answer) {
        clearTimeout(timer);
        reject(new Error(`connection closed without an answer to ${options.method} ${options.path} (${sent} bytes sent)`));
      }
    });
    socket.once('connect', async () => {
      socket.write(
        [
          `${options.method} ${options.path} HTTP/1.1`,
          `Host: ${hostname}:${port}`,
          ...options.headers,
          `Content-Length: ${options.body.length}`,
          '',
          '',
        ].join('\r\n'),
      );
      while (!answer && !socket.destroyed && sent < options.body.length) {
        const piece = options.body.subarray(sent, sent + options.pieceBytes);
        sent += piece.length;
        if (!socket.write(piece)) await new Promise((drained) => socket.once('drain', drained).once('close', drained));
        if (options.pauseMs > 0) await sleep(options.pauseMs);
      }
    });
  });
}

function errorCode(response: PacedResponse): string | undefined {
  try {
    return (JSON.parse(response.body) as { errors?: Array<{ code: string }> }).errors?.[0]?.code;
  } catch {
    return undefined;
  }
}

async function monolithic(registry: RegistryProcess, repository: string, blob: Blob, pace: { pieceBytes: number; pauseMs: number }) {
  return sendPaced(registry.url, {
    method: 'POST',
    path: `/v2/${repository}/blobs/uploads/?digest=${blob.digest}`,
    headers: ['Content-Type: application/octet-stream'],
    body: blob.bytes,
    ...pace,
  });
}

async function chunk(registry: RegistryProcess, location: URL, bytes: Buffer, pace: { pieceBytes: number; pauseMs: number }) {
  return sendPaced(registry.url, {
    method: 'PATCH',
    path: location.pathname + location.search,
    headers: ['Content-Type: application/octet-stream', `Content-Range: 0-${bytes.length - 1}`],
    body: bytes,
    ...pace,
  });
}

async function blobStatus(registry: RegistryProcess, repository: string, digest: string, method = 'HEAD'): Promise<number> {
  return (await request(registry.url, `/v2/${repository}/blobs/${digest}`, { method })).status;
}

function isRunning(registry: RegistryProcess): boolean {
  return registry.child.exitCode === null && registry.child.signalCode === null;
}

const FAST = { pieceBytes: 256 * 1024, pauseMs: 0 };
const SLOW = { pieceBytes: 64 * 1024, pauseMs: 15 };

test('a full blob store answers every upload, fast or slow, monolithic or chunked, with 507 and the process keeps serving', async (t) => {
  const disk = await smallDisk(t, 32);
  const registry = await RegistryProcess.start({ env: { BERTH_STORAGE__FILESYSTEM__ROOT: disk } });
  t.teardown(() => registry.destroy());
  const repository = 'full/disk';
  const filler = await fill(disk, 32, 6);

  const attempts: Array<{ name: string; digest: string; response: PacedResponse; location?: URL }> = [];
  for (const [name, pace] of [
    ['monolithic fast', FAST],
    ['monolithic slow', SLOW],
  ] as const) {
    const blob = makeBlob(10 * MiB);
    attempts.push({ name, digest: blob.digest, response: await monolithic(registry, repository, blob, pace) });
  }
  for (const [name, pace] of [
    ['chunked fast', FAST],
    ['chunked slow', SLOW],
  ] as const) {
    const blob = makeBlob(10 * MiB);
    const { location } = await startUpload(registry.url, repository);
    attempts.push({ name, digest: blob.digest, response: await chunk(registry, location, blob.bytes, pace), location });
  }

  for (const { name, digest, response } of attempts) {
    t.log(`${name}: ${response.status} after ${(response.sent / MiB).toFixed(1)} MiB of 10 sent`);
    t.is(response.status, 507, `${name}: ${response.body}`);
    t.is(errorCode(response), 'STORAGE_FULL', name);
    t.regex(response.body, /storage is full/, name);
    if (name.endsWith('slow')) t.true(response.sent < 10 * MiB, `${name}: answered before the whole body was sent`);
    t.is(await blobStatus(registry, repository, digest), 404, `${name}: nothing partial is visible`);
  }
  t.true(isRunning(registry));
  t.regex(registry.logs, /ENOSPC/);
  t.notRegex(registry.logs, UNHANDLED);

  // Space freed: the chunked sessions are cancelled (their bytes go) and the filler removed; pushes work again.
  for (const { location } of attempts) {
    if (location) t.is((await request(registry.url, location.pathname, { method: 'DELETE' })).status, 204);
  }
  await rm(filler);
  const monolithicAgain = makeBlob(10 * MiB);
  await pushBlob(registry.url, repository, monolithicAgain);
  const chunkedAgain = makeBlob(10 * MiB);
  t.is((await pushBlobInChunks(registry.url, repository, chunkedAgain, [4 * MiB, 4 * MiB, 2 * MiB])).status, 201);
  for (const blob of [monolithicAgain, chunkedAgain]) {
    const response = await request(registry.url, `/v2/${repository}/blobs/${blob.digest}`);
    t.is(response.status, 200);
    t.true((await readBytes(response)).equals(blob.bytes));
  }
  t.true(isRunning(registry));
  t.notRegex(registry.logs, UNHANDLED);
});

test('with the whole data directory full, existing images still pull, readiness says why and pushes get a clean 5xx', async (t) => {
  const disk = await smallDisk(t, 48);
  const registry = await RegistryProcess.start({ dataDir: disk });
  t.teardown(() => registry.stop());
  const repository = 'full/data';
  const image = await pushImage(registry.url, repository, { tag: 'v1', layers: [makeBlob(MiB)] });
  const filler = await fill(disk, 48);

  // Metadata writes (tags) until Redis can no longer persist one: each is answered, none hangs.
  const statuses: number[] = [];
  for (let index = 0; index < 300 && !statuses.some((status) => status >= 500); index += 1) {
    const response = await putManifest(registry.url, repository, `t${index}`, image);
    statuses.push(response.status);
    if (response.status >= 500)
      t.regex(((await response.json()) as { errors: Array<{ code: string }> }).errors[0]?.code ?? '', /UNAVAILABLE|STORAGE/);
  }
  t.true(
    statuses.some((status) => status >= 500),
    `tag pushes: ${statuses.join(',')}`,
  );
  t.log(`tag pushes until Redis could not persist: ${statuses.length} (${statuses.at(-1)})`);

  const readiness = await eventually(
    async () => {
      const response = await request(registry.url, '/readyz');
      return { status: response.status, body: (await response.json()) as { checks: Record<string, string> } };
    },
    ({ body }) => /append-only file/.test(body.checks.redis ?? '') && /ENOSPC/.test(body.checks.storage ?? ''),
    15_000,
  );
  t.is(readiness.status, 503);

  // Reads keep working, repeatedly (no restart loop of the embedded Redis underneath).
  for (let round = 0; round < 10; round += 1) {
    for (const blob of [image.config, ...image.layers]) {
      t.is(await blobStatus(registry, repository, blob.digest), 200);
      const response = await request(registry.url, `/v2/${repository}/blobs/${blob.digest}`);
      t.is(response.status, 200);
      t.true((await readBytes(response)).equals(blob.bytes));
    }
    for (const reference of ['v1', image.digest]) {
      const response = await request(registry.url, `/v2/${repository}/manifests/${reference}`, { headers: { Accept: image.mediaType } });
      t.is(response.status, 200);
      t.true((await readBytes(response)).equals(image.bytes));
    }
    await sleep(200);
  }
  const started = Date.now();
  const push = await request(registry.url, `/v2/${repository}/blobs/uploads/?digest=${blobOf('late').digest}`, {
    method: 'POST',
    body: 'late',
  });
  t.true(push.status === 503 || push.status === 507, `push while full: ${push.status}`);
  t.regex(push.headers.get('content-type') ?? '', /json/);
  t.true(Date.now() - started < 10_000);
  t.is(registry.logs.match(/embedded redis cannot persist writes/g)?.length, 1, 'the full disk is reported once');
  t.notRegex(registry.logs, /embedded redis exited; restarting/);
  t.true(isRunning(registry));

  await rm(filler);
  const freed = Date.now();
  await eventually(
    async () => (await request(registry.url, '/readyz')).status,
    (status) => status === 200,
    20_000,
  );
  t.log(`ready again ${Date.now() - freed} ms after the space was freed`);
  const after = await pushImage(registry.url, repository, { tag: 'v2' });
  t.is((await request(registry.url, `/v2/${repository}/manifests/v2`, { headers: { Accept: after.mediaType } })).status, 200);
  t.regex(registry.logs, /embedded redis accepts writes again/);
  t.notRegex(registry.logs, UNHANDLED);
  await registry.stop();
});
