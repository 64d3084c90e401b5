import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';

/**
 * Child processes whose output is kept (for readiness and for the message of a failure), for tests and
 * benchmarks that start the real programs.
 */
export class CapturedProcess {
  private captured = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(readonly child: ChildProcess) {
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    for (const stream of [child.stdout, child.stderr]) {
      stream?.setEncoding('utf8');
      stream?.on('data', (text: string) => {
        this.captured += text;
      });
    }
  }

  /** Standard output and standard error, interleaved as they arrived. */
  get output(): string {
    return this.captured;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** SIGTERM (a server then stops what it started, e.g. its embedded Redis), SIGKILL if it is still there after `graceMs`. */
  async stop(graceMs = 5_000): Promise<void> {
    if (this.running) this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.running && this.child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  /**
   * Resolves with what `match` finds in the output once it finds something; rejects if the process exits
   * first or `timeoutMs` passes, with the output so far in the message.
   */
  waitFor<T>(match: (output: string) => T | undefined, options: { timeoutMs: number; what: string }): Promise<T> {
    return new Promise((resolve, reject) => {
      const finish = (outcome: () => void) => {
        clearTimeout(timer);
        this.child.stdout?.off('data', check);
        this.child.stderr?.off('data', check);
        this.child.off('exit', onExit);
        outcome();
      };
      const check = () => {
        const found = match(this.captured);
        if (found !== undefined) finish(() => resolve(found));
      };
      const onExit = (code: number | null, signal: NodeJS.Signals | null) =>
        finish(() => reject(new Error(`${options.what}: exited (code ${code}, signal ${signal}) first:\n${this.captured}`)));
      const timer = setTimeout(
        () => finish(() => reject(new Error(`${options.what}: not within ${options.timeoutMs} ms:\n${this.captured}`))),
        options.timeoutMs,
      );
      this.child.stdout?.on('data', check);
      this.child.stderr?.on('data', check);
      this.child.once('exit', onExit);
      if (!this.running) onExit(this.child.exitCode, this.child.signalCode);
      else check();
    });
  }
}

/** Spawns a server and resolves once its output says it listens (what `listening` extracts, e.g. the port). */
export async function spawnUntilListening<T>(
  command: string,
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; name: string; timeoutMs: number; listening: (output: string) => T | undefined } & Pick<
    SpawnOptions,
    'cwd'
  >,
): Promise<{ process: CapturedProcess; listening: T }> {
  const captured = new CapturedProcess(
    spawn(command, args, { cwd: options.cwd, env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] }),
  );
  try {
    const listening = await captured.waitFor(options.listening, { timeoutMs: options.timeoutMs, what: `${options.name} listening` });
    return { process: captured, listening };
  } catch (error) {
    await captured.stop();
    throw error;
  }
}

/**
 * The port in a pino start-up line with `message` and a `port` field, in JSON (fields before the message) or
 * pretty form (message, then fields).
 */
export function listeningPort(output: string, message: string): number | undefined {
  const pattern = new RegExp(`"port":(\\d+)[^\\n]*${message}|${message}[^\\n]*"port":(\\d+)`);
  const match = pattern.exec(output);
  return match ? Number(match[1] ?? match[2]) : undefined;
}
