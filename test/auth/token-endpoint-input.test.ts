import test from 'ava';
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { AuthRegistry } from '../helpers/auth-registry.js';
import { eventually } from '../helpers/eventually.js';
import { request } from '../helpers/http-client.js';

let registry: AuthRegistry;

test.before(async () => {
  registry = await AuthRegistry.start();
});

test.after.always(async () => {
  await registry?.destroy();
});

interface LogLine {
  level: number;
  msg: string;
  requestId?: string;
  status?: number;
  err?: unknown;
}

function logLines(requestId: string): LogLine[] {
  return registry.process.logs
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as LogLine)
    .filter((line) => line.requestId === requestId);
}

/** Sends the head of a POST /token and part of its declared body, then drops the connection. */
async function abortedTokenRequest(requestId: string): Promise<void> {
  const socket = connect(registry.process.port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  socket.write(
    [
      'POST /token HTTP/1.1',
      `Host: ${registry.host}`,
      'Content-Type: application/x-www-form-urlencoded',
      'Content-Length: 1000',
      `X-Request-Id: ${requestId}`,
      '',
      'grant_type=password&username=alice&pass',
    ].join('\r\n'),
  );
  await sleep(200);
  socket.destroy();
}

test('a POST /token whose client goes away mid-body is logged once at info with status 499, without an error or a stack', async (t) => {
  const requestId = 'aborted-token-request';
  await abortedTokenRequest(requestId);
  const [line] = await eventually(
    async () => logLines(requestId).filter((entry) => entry.msg === 'request'),
    (lines) => lines.length > 0,
    5_000,
  );
  t.is(line!.level, 30, 'info');
  t.is(line!.status, 499);
  await sleep(200);
  const lines = logLines(requestId);
  t.deepEqual(
    lines.filter((entry) => entry.level >= 40 || entry.err !== undefined),
    [],
    'no warning or error, no stack',
  );
  t.is(lines.length, 1);
});

test('POST /token with a declared body over the limit is refused with 413 before the body is sent', async (t) => {
  const socket = connect(registry.process.port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  const answer = new Promise<string>((resolve) => {
    let text = '';
    socket.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
    socket.once('close', () => resolve(text));
  });
  // Only the head: the answer must not wait for ten megabytes that never come.
  socket.write(
    [
      'POST /token HTTP/1.1',
      `Host: ${registry.host}`,
      'Content-Type: application/x-www-form-urlencoded',
      'Content-Length: 10485760',
      '',
      '',
    ].join('\r\n'),
  );
  const text = await Promise.race([answer, sleep(5_000).then(() => 'no answer within 5 s')]);
  socket.destroy();
  t.regex(text, /^HTTP\/1\.1 413 /);
  t.regex(text, /"code":"SIZE_INVALID"/);
  t.regex(text, /connection: close/i);
});

test('POST /token with a chunked body over the limit is answered 413, not dropped', async (t) => {
  const form = new TextEncoder().encode(`grant_type=password&username=${'a'.repeat(200 * 1024)}`);
  // A stream body has no length: fetch sends it chunked.
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(form);
      controller.close();
    },
  });
  const response = await fetch(`${registry.url}/token`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body,
    duplex: 'half',
    signal: AbortSignal.timeout(10_000),
  } as RequestInit);
  t.is(response.status, 413);
  t.is(((await response.json()) as { errors: Array<{ code: string }> }).errors[0]?.code, 'SIZE_INVALID');
});

test('POST /token with another content type than a form is refused with 415, unread', async (t) => {
  for (const type of ['application/json', 'text/plain']) {
    const response = await request(registry.url, '/token', {
      method: 'POST',
      headers: { 'Content-Type': type },
      body: JSON.stringify({ grant_type: 'password', username: 'admin', password: 'x' }),
    });
    t.is(response.status, 415, type);
    t.is(((await response.json()) as { errors: Array<{ code: string }> }).errors[0]?.code, 'UNSUPPORTED');
  }
});
