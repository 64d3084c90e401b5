import test from 'ava';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { JsonLogWriter, type LogRotation } from '../../runtime-agent/container/logs/json-log-writer.js';
import type { LogEntry } from '../../runtime-agent/container/logs/log-entry.js';
import { printLogEntries } from '../../runtime-agent/container/logs/log-formatter.js';
import { readLogs, type ReadLogsOptions } from '../../runtime-agent/container/logs/log-reader.js';
import { MAX_ENTRY_TEXT_BYTES } from '../../runtime-agent/container/logs/log-line-splitter.js';

const RFC3339_NANO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/;
/** Small files, so a few hundred short lines rotate many times. */
const SMALL_FILES: LogRotation = { maxSizeBytes: 1000, maxFiles: 3 };

let workDir: string;

test.before(async () => {
  workDir = await mkdtemp(path.join(tmpdir(), 'berth-logs-'));
});

test.after.always(async () => {
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

async function logDir(): Promise<string> {
  return mkdtemp(path.join(workDir, 'container-'));
}

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const all: T[] = [];
  for await (const item of items) all.push(item);
  return all;
}

async function readTexts(directory: string, options: ReadLogsOptions = {}): Promise<string[]> {
  return (await collect(readLogs(directory, options))).map((entry) => entry.log);
}

function numbered(count: number, from = 0): string[] {
  return Array.from({ length: count }, (_, i) => `line ${String(from + i).padStart(4, '0')}\n`);
}

async function writeLines(directory: string, lines: string[], rotation: Partial<LogRotation> = {}): Promise<void> {
  const writer = await JsonLogWriter.open(directory, rotation);
  for (const line of lines) writer.stream('stdout').write(line);
  await writer.close();
}

async function until(condition: () => boolean, what: string): Promise<void> {
  for (const deadline = Date.now() + 5_000; !condition(); await sleep(5)) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
  }
}

/** A follower collecting what it reads, started once it has read the log's last line (so it is positioned). */
async function startFollowing(directory: string, options: ReadLogsOptions): Promise<{ seen: string[]; done: Promise<void> }> {
  const seen: string[] = [];
  const done = (async () => {
    for await (const entry of readLogs(directory, { ...options, follow: true, tail: 1 })) seen.push(entry.log);
  })();
  await until(() => seen.length > 0, 'the follower to read the last line');
  return { seen, done };
}

/** What is written to a stream, as text, read as it comes (so the writer is never held up). */
function capture(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  const chunks: Buffer[] = [];
  stream.on('data', (chunk: Buffer) => chunks.push(chunk));
  return { stream, text: () => Buffer.concat(chunks).toString() };
}

/** The log as `logs` prints it, stdout and stderr apart. */
async function printed(directory: string, timestamps: boolean): Promise<{ stdout: string; stderr: string }> {
  const stdout = capture();
  const stderr = capture();
  await printLogEntries(readLogs(directory), { stdout: stdout.stream, stderr: stderr.stream }, timestamps);
  return { stdout: stdout.text(), stderr: stderr.text() };
}

/** Bytes this process has read through system calls so far (files, pipes, sockets alike). */
async function bytesReadByProcess(): Promise<number> {
  return Number(/^rchar: (\d+)$/m.exec(await readFile('/proc/self/io', 'utf8'))![1]);
}

test.serial('the last 3 lines of a 10 MiB log are found by reading a block or two from its end', async (t) => {
  const directory = await logDir();
  const writer = await JsonLogWriter.open(directory, { maxSizeBytes: 64 * 1024 * 1024 });
  const filler = 'x'.repeat(1000);
  for (let chunk = 0; chunk < 100; chunk++) {
    const lines = Array.from({ length: 100 }, (_, i) => `${chunk * 100 + i} ${filler}\n`).join('');
    if (!writer.stream('stdout').write(lines)) await once(writer.stream('stdout'), 'drain');
  }
  await writer.close();
  const size = (await stat(path.join(directory, 'container.log'))).size;
  t.true(size > 10 * 1024 * 1024);

  const beforeTail = await bytesReadByProcess();
  const last = await readTexts(directory, { tail: 3 });
  const tailRead = (await bytesReadByProcess()) - beforeTail;
  t.deepEqual(last, [`9997 ${filler}\n`, `9998 ${filler}\n`, `9999 ${filler}\n`]);

  const beforeAll = await bytesReadByProcess();
  t.is((await readTexts(directory)).length, 10_000);
  const allRead = (await bytesReadByProcess()) - beforeAll;
  t.log(`log ${size} bytes: tail 3 read ${tailRead} bytes, reading everything ${allRead}`);
  t.true(allRead >= size, 'the measure sees file reads');
  t.true(tailRead < 256 * 1024);
});

test('stdout and stderr written in turn keep their order, even written faster than the file takes them', async (t) => {
  const directory = await logDir();
  const writer = await JsonLogWriter.open(directory);
  const expected: Array<[string, string]> = [];
  let toldToWait = false;
  // Some 2 MiB at once: far more than the writer queues before asking writers to wait.
  for (let i = 0; i < 25_000; i++) {
    const stream = i % 3 === 0 ? 'stderr' : 'stdout';
    if (!writer.stream(stream).write(`${stream} ${i}\n`)) toldToWait = true;
    expected.push([stream, `${stream} ${i}\n`]);
  }
  await writer.close();

  t.true(toldToWait, 'write() asked the writer to wait');
  const entries = await collect(readLogs(directory));
  t.deepEqual(
    entries.map((entry) => [entry.stream, entry.log]),
    expected,
  );
  t.true(entries.every((entry) => RFC3339_NANO.test(entry.time)));
  t.true(
    entries.every((entry, i) => i === 0 || entry.time >= entries[i - 1]!.time),
    'times never go backwards',
  );
  const firstLine = (await readFile(path.join(directory, 'container.log'), 'utf8')).split('\n')[0]!;
  t.regex(firstLine, /^\{"log":"stderr 0\\n","stream":"stderr","time":"[^"]+"\}$/);
});

/** Pipes a real process's output into a log, as the shim does, and waits until all of it is written. */
async function logProcess(directory: string, script: string): Promise<void> {
  const writer = await JsonLogWriter.open(directory);
  const child = spawn('sh', ['-c', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.pipe(writer.stream('stdout'));
  child.stderr.pipe(writer.stream('stderr'));
  await once(child, 'close');
  await writer.close();
}

// Serial: the order between two pipes is the order the event loop reads them, which a busy loop would blur.
test.serial('a process piped in as the shim pipes it has its stdout and stderr lines in the order it printed them', async (t) => {
  const directory = await logDir();
  await logProcess(directory, 'for i in 1 2 3; do echo out $i; sleep 0.05; echo err $i >&2; sleep 0.05; done; printf "no newline"');

  t.deepEqual(
    (await collect(readLogs(directory))).map((entry) => `${entry.stream}: ${entry.log}`),
    [
      'stdout: out 1\n',
      'stderr: err 1\n',
      'stdout: out 2\n',
      'stderr: err 2\n',
      'stdout: out 3\n',
      'stderr: err 3\n',
      'stdout: no newline',
    ],
  );
});

test('a process printing faster than the file takes it loses nothing: its pipe waits for room', async (t) => {
  const directory = await logDir();
  await logProcess(directory, 'seq 1 300000');

  const texts = await readTexts(directory);
  t.is(texts.length, 300_000);
  t.is(texts[0], '1\n');
  t.is(texts.at(-1), '300000\n');
});

test('a line written in pieces is one entry, and an unterminated last line is kept when the stream ends', async (t) => {
  const directory = await logDir();
  const writer = await JsonLogWriter.open(directory);
  const stdout = writer.stream('stdout');
  const stderr = writer.stream('stderr');
  stdout.write('hel');
  stdout.write('lo\nwor');
  stderr.write('e');
  stdout.write('ld');
  stderr.write('rr\n');
  await writer.close();

  t.deepEqual(
    (await collect(readLogs(directory))).map((entry) => [entry.stream, entry.log]),
    [
      ['stdout', 'hello\n'],
      ['stderr', 'err\n'],
      ['stdout', 'world'],
    ],
  );
});

test('a line longer than 16 KiB becomes 16 KiB entries that print back as the line, without splitting a character', async (t) => {
  const directory = await logDir();
  // One ASCII byte first, so the 16 KiB boundary falls inside a two-byte 'é'.
  const long = `a${'é'.repeat(20_000)}\n`;
  const exact = `${'b'.repeat(MAX_ENTRY_TEXT_BYTES)}\n`;
  await writeLines(directory, [long, exact]);

  const texts = await readTexts(directory);
  t.is(texts.length, 4);
  t.deepEqual(
    texts.map((text) => text.endsWith('\n')),
    [false, false, true, true],
  );
  t.true(texts.every((text) => Buffer.byteLength(text.replace(/\n$/, '')) <= MAX_ENTRY_TEXT_BYTES));
  t.false(texts.some((text) => text.includes('\ufffd')));
  t.is(texts[3], exact, 'a line of exactly 16 KiB stays whole');
  t.is((await printed(directory, false)).stdout, long + exact);
});

test('rotation keeps maxFiles files under the size limit, and reading them gives the latest lines in order', async (t) => {
  const directory = await logDir();
  const lines = numbered(200);
  await writeLines(directory, lines, SMALL_FILES);

  t.deepEqual((await readdir(directory)).sort(), ['container.log', 'container.log.1', 'container.log.2']);
  for (const name of await readdir(directory)) t.true((await stat(path.join(directory, name))).size <= SMALL_FILES.maxSizeBytes);
  const kept = await readTexts(directory);
  t.true(kept.length > 20 && kept.length < 200, `${kept.length} lines kept`);
  t.deepEqual(kept, lines.slice(-kept.length));
  t.deepEqual(await readTexts(directory, { tail: 20 }), lines.slice(-20), 'a tail reaching into rotated files');
  t.deepEqual(await readTexts(directory, { tail: 1000 }), kept, 'a tail longer than the log');
  t.deepEqual(await readTexts(directory, { tail: 0 }), []);
});

test('a writer reopened on the same log appends and rotates by the size already there', async (t) => {
  const directory = await logDir();
  const lines = numbered(20);
  await writeLines(directory, lines.slice(0, 10), SMALL_FILES);
  await writeLines(directory, lines.slice(10), SMALL_FILES);

  t.deepEqual(await readTexts(directory), lines);
  t.deepEqual((await readdir(directory)).sort(), ['container.log', 'container.log.1']);
});

test('since leaves out entries written before it', async (t) => {
  const directory = await logDir();
  const writer = await JsonLogWriter.open(directory);
  writer.stream('stdout').write('old\n');
  await sleep(20);
  const since = new Date();
  writer.stream('stderr').write('new\n');
  await writer.close();

  t.deepEqual(await readTexts(directory, { since }), ['new\n']);
});

test('follow yields lines as they are written, through many rotations, until stopWhen and the last lines are read', async (t) => {
  const directory = await logDir();
  const writer = await JsonLogWriter.open(directory, { maxSizeBytes: 1000, maxFiles: 2 });
  const stdout = writer.stream('stdout');
  stdout.write('before\n');
  let containerExited!: () => void;
  const follower = await startFollowing(directory, { stopWhen: new Promise<void>((resolve) => (containerExited = resolve)) });

  const lines = numbered(300);
  for (let batch = 0; batch < 30; batch++) {
    const written = lines.slice(batch * 10, batch * 10 + 10);
    for (const line of written) stdout.write(line);
    await until(() => follower.seen.at(-1) === written.at(-1), `batch ${batch}`);
  }
  stdout.write('last words\n');
  stdout.write('unterminated');
  await writer.close();
  const stillFollowing = await Promise.race([follower.done.then(() => false), sleep(300).then(() => true)]);
  containerExited();
  await follower.done;

  t.true(stillFollowing, 'a follower waits for stopWhen even when nothing is written');
  t.deepEqual(follower.seen, ['before\n', ...lines, 'last words\n', 'unterminated']);
  t.false((await readTexts(directory)).includes(lines[0]!), 'the first lines were rotated out of the files');
});

test('a follower started before the first output sees it, and ends when its signal aborts', async (t) => {
  const directory = await logDir();
  const aborter = new AbortController();
  const seen: LogEntry[] = [];
  const done = (async () => {
    for await (const entry of readLogs(directory, { follow: true, signal: aborter.signal })) seen.push(entry);
  })();
  const writer = await JsonLogWriter.open(directory);
  writer.stream('stderr').write('starting\n');
  await until(() => seen.length === 1, 'the first line');
  aborter.abort();
  await done;
  await writer.close();

  t.deepEqual(
    seen.map((entry) => [entry.stream, entry.log]),
    [['stderr', 'starting\n']],
  );
});

test('logs prints stdout entries on stdout and stderr entries on stderr, with -t after their time and a space', async (t) => {
  const directory = await logDir();
  const writer = await JsonLogWriter.open(directory);
  writer.stream('stdout').write('hello\n');
  writer.stream('stderr').write('oops\n');
  writer.stream('stdout').write('bye');
  await writer.close();

  t.deepEqual(await printed(directory, false), { stdout: 'hello\nbye', stderr: 'oops\n' });
  const withTimes = await printed(directory, true);
  const time = String.raw`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z`;
  t.regex(withTimes.stdout, new RegExp(`^${time} hello\\n${time} bye$`));
  t.regex(withTimes.stderr, new RegExp(`^${time} oops\\n$`));
});
