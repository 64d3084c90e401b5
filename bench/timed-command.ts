import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';

export interface CommandLine {
  file: string;
  args: string[];
  /** Added to this process's environment. */
  env?: Record<string, string>;
}

export interface CommandTiming {
  /** From spawning the command to the first byte on its stdout (NaN when it printed nothing). */
  firstOutputMs: number;
  /** From spawning the command to its exit with its output closed. */
  exitMs: number;
}

/**
 * Runs a command as a user at a shell would, with the clock started just before the spawn: what a user waits
 * for includes the client's own start-up. Rejects on a non-zero exit, or when `expectedStdout` is given and
 * the command printed something else (a fast failure must not pass for a fast run).
 */
export function timeCommand(command: CommandLine, expectedStdout?: string): Promise<CommandTiming> {
  const commandLine = [command.file, ...command.args].join(' ');
  return new Promise((resolve, reject) => {
    const started = performance.now();
    let firstOutput = Number.NaN;
    const child = spawn(command.file, command.args, { env: { ...process.env, ...command.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      if (Number.isNaN(firstOutput)) firstOutput = performance.now();
      stdout += chunk.toString('utf8');
    });
    child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
    child.once('error', (error) => reject(new Error(`${commandLine} could not start: ${error.message}`)));
    child.once('close', (code, signal) => {
      const exited = performance.now();
      const failure =
        code !== 0
          ? `exited with ${code ?? signal}`
          : expectedStdout !== undefined && stdout !== expectedStdout
            ? `printed ${JSON.stringify(stdout)}, expected ${JSON.stringify(expectedStdout)}`
            : undefined;
      if (failure) reject(new Error(`${commandLine} ${failure}\n--- stdout ---\n${stdout}\n--- stderr ---\n${stderr}`));
      else resolve({ firstOutputMs: firstOutput - started, exitMs: exited - started });
    });
  });
}
