import test from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { JsonLogWriter } from '../../runtime-agent/container/logs/json-log-writer.js';
import { readLogs } from '../../runtime-agent/container/logs/log-reader.js';
import { logTerminalOutput } from '../../runtime-agent/shim/terminal-log.js';

/**
 * The shim's copy of a `-t` container's terminal into its log (the real JsonLogWriter on a real file). The
 * terminal is a stand-in that, like node-pty, hands over output as fast as it is read and not while paused:
 * a program printing as fast as it can.
 */

const LINE_BYTES = 1024;
const CHUNK_LINES = 64;

class RunawayTerminal {
  private listener: ((data: Buffer) => void) | undefined;
  private paused = false;
  private next = 0;
  pauses = 0;
  resumes = 0;
  /** The most memory held by Buffers seen while output was being handed over. */
  peakBufferBytes = 0;

  constructor(private readonly lines: number) {}

  onOutput(listener: (data: Buffer) => void): void {
    this.listener = listener;
  }

  pause(): void {
    this.paused = true;
    this.pauses++;
  }

  resume(): void {
    this.paused = false;
    this.resumes++;
    setImmediate(() => this.flood());
  }

  /** Hands over chunks until paused or done; the lines are numbered so the log's order can be checked. */
  flood(): void {
    while (!this.paused && this.next < this.lines) {
      const chunk: string[] = [];
      for (let i = 0; i < CHUNK_LINES && this.next < this.lines; i++, this.next++) chunk.push(lineOf(this.next));
      this.listener?.(Buffer.from(chunk.join('')));
      this.peakBufferBytes = Math.max(this.peakBufferBytes, process.memoryUsage().arrayBuffers);
    }
  }

  get done(): boolean {
    return this.next === this.lines;
  }
}

function lineOf(index: number): string {
  return `${String(index).padStart(10, '0')} ${'x'.repeat(LINE_BYTES - 12)}\n`;
}

test('a terminal printing faster than its log is written waits for the log: memory stays bounded and every line is kept in order', async (t) => {
  const directory = await mkdtemp(path.join(tmpdir(), 'berth-terminal-log-'));
  t.teardown(() => rm(directory, { recursive: true, force: true }));
  const lines = 96 * 1024; // 96 MiB of output
  const log = await JsonLogWriter.open(directory, { maxSizeBytes: 1024 * 1024 * 1024, maxFiles: 1 });
  const terminal = new RunawayTerminal(lines);
  const before = process.memoryUsage().arrayBuffers;
  logTerminalOutput(terminal, log.stream('stdout'));
  terminal.flood();
  const deadline = Date.now() + 60_000;
  while (!terminal.done && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  await log.close();

  t.true(terminal.done, 'the whole output was read');
  t.true(terminal.pauses > 0 && terminal.resumes === terminal.pauses, `paused ${terminal.pauses}, resumed ${terminal.resumes} times`);
  const grewBy = terminal.peakBufferBytes - before;
  t.true(grewBy < 32 * 1024 * 1024, `output held in memory grew to ${Math.round(grewBy / 1024 / 1024)} MiB`);
  let expected = 0;
  let outOfOrder = 0;
  for await (const entry of readLogs(directory)) {
    if (entry.log !== lineOf(expected)) outOfOrder++;
    expected++;
  }
  t.is(outOfOrder, 0);
  t.is(expected, lines);
});
