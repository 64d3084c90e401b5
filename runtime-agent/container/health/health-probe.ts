import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { exitCodeOf } from '../../../platform/process-exit.js';
import { formatGoDuration } from '../../../platform/go-duration.js';
import type { HealthResult } from './health-state.js';

/** docker keeps 4 KiB of a probe's output (stdout and stderr together) and marks a cut with `...`. */
export const MAX_OUTPUT_BYTES = 4096;
/** How long a killed probe's runtime may take to report the end before it is killed too. */
const KILL_GRACE_MS = 5000;
const KILL_RETRY_MS = 50;
/** How long output may still arrive after the probe exited: a process it left behind may hold its stdout open. */
const OUTPUT_GRACE_MS = 200;

/** A probe in flight: its result, and how to end it early (when its container's run ends). */
export interface RunningProbe {
  result: Promise<HealthResult>;
  cancel(): void;
}

/**
 * Runs one probe through `runc exec` (started by `spawnProbe`) and reports it as docker does: the exit code
 * and the first 4 KiB of output; a probe over `timeoutMs` is killed and reported with exit code -1 and
 * "Health check exceeded timeout (…)"; a probe that cannot start is exit code -1 and the error.
 */
export function runProbe(spawnProbe: () => ChildProcessWithoutNullStreams, timeoutMs: number): RunningProbe {
  const Start = new Date().toISOString();
  const output = new LimitedOutput(MAX_OUTPUT_BYTES);
  let child: ChildProcessWithoutNullStreams;
  try {
    child = spawnProbe();
  } catch (error) {
    return { result: Promise.resolve(failure(Start, (error as Error).message)), cancel: () => undefined };
  }
  child.stdin.end();
  child.stdout.on('data', (chunk: Buffer) => output.write(chunk));
  child.stderr.on('data', (chunk: Buffer) => output.write(chunk));
  let timedOut = false;
  const ended = new Promise<number | Error>((resolve) => {
    child.once('error', resolve);
    child.once('exit', (code, signal) => {
      const exitCode = exitCodeOf(code, signal);
      const timer = setTimeout(() => resolve(exitCode), OUTPUT_GRACE_MS);
      child.once('close', () => {
        clearTimeout(timer);
        resolve(exitCode);
      });
    });
  });
  const timer = setTimeout(() => {
    timedOut = true;
    void killProbe(child, ended);
  }, timeoutMs);
  const result = ended.then((outcome): HealthResult => {
    clearTimeout(timer);
    if (outcome instanceof Error) return failure(Start, outcome.message);
    if (timedOut) {
      const text = output.text();
      const message = `Health check exceeded timeout (${formatGoDuration(timeoutMs * 1e6)})`;
      return failure(Start, text === '' ? message : `${message}: ${text}`);
    }
    return { Start, End: new Date().toISOString(), ExitCode: outcome, Output: output.text() };
  });
  return { result, cancel: () => void killProbe(child, ended) };
}

function failure(Start: string, Output: string): HealthResult {
  return { Start, End: new Date().toISOString(), ExitCode: -1, Output };
}

/**
 * SIGKILLs the probe's processes in the container (what `runc exec` started and what that started): runc
 * cannot pass SIGKILL on. A slow `runc exec` may start the process only after a first look, so it looks
 * again until runc reports the end; if it does not in time, runc is killed too.
 */
async function killProbe(runtime: ChildProcessWithoutNullStreams, ended: Promise<unknown>): Promise<void> {
  const pid = runtime.pid;
  if (pid === undefined) return;
  let done = false;
  void ended.then(() => (done = true));
  for (const deadline = Date.now() + KILL_GRACE_MS; !done && Date.now() < deadline; await sleep(KILL_RETRY_MS)) {
    for (const descendant of await descendantsOf(pid)) {
      try {
        process.kill(descendant, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
  }
  if (!done) runtime.kill('SIGKILL');
  await ended;
}

/** Every process below `ancestor`, parents first (the parent is field 4 of /proc/<pid>/stat, after the command's name). */
async function descendantsOf(ancestor: number): Promise<number[]> {
  const pids = (await readdir('/proc')).filter((name) => /^\d+$/.test(name)).map(Number);
  const parents = await Promise.all(
    pids.map(async (pid) => {
      const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
      return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    }),
  );
  const found: number[] = [];
  for (let frontier = [ancestor]; frontier.length > 0;) {
    frontier = pids.filter((_, index) => frontier.includes(parents[index] ?? -1));
    found.push(...frontier);
  }
  return found;
}

/** The first `limit` bytes written, `...` appended when more came (docker's limitedBuffer). */
class LimitedOutput {
  private readonly chunks: Buffer[] = [];
  private size = 0;
  private truncated = false;

  constructor(private readonly limit: number) {}

  write(chunk: Buffer): void {
    const room = this.limit - this.size;
    if (chunk.length > room) this.truncated = true;
    const kept = chunk.subarray(0, Math.max(0, room));
    this.chunks.push(kept);
    this.size += kept.length;
  }

  text(): string {
    return `${Buffer.concat(this.chunks).toString('utf8')}${this.truncated ? '...' : ''}`;
  }
}
