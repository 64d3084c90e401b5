import { spawn } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Added to (and overriding) the test process's environment. */
  env?: Record<string, string>;
  cwd?: string;
  /** A failing command resolves instead of rejecting, for tests that assert on the failure itself. */
  allowFailure?: boolean;
  /** A hung client must fail its test rather than the whole run at ava's timeout. */
  timeoutMs?: number;
  /** Written to the command's standard input (otherwise it is empty), e.g. a password for --password-stdin. */
  input?: string;
}

const DEFAULT_TIMEOUT_MS = 120_000;

/**
 * Runs a command to completion and collects its output. Rejects on a non-zero exit (unless allowFailure),
 * on a signal or on a timeout, with the command line and everything it printed: a failing client test then
 * shows the client's own error message.
 */
export function run(command: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const commandLine = [command, ...args].join(' ');
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: { ...process.env, ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    // Closed at once when there is no input: the command sees an empty stdin, as with /dev/null.
    child.stdin.end(options.input);
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (text: string) => (stdout += text));
    child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    const describe = (outcome: string) => `${commandLine} ${outcome}\n--- stdout ---\n${stdout}\n--- stderr ---\n${stderr}`;
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(new Error(describe(`could not start: ${error.message}`)));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (timedOut) reject(new Error(describe(`timed out after ${timeoutMs} ms`)));
      else if (code === null) reject(new Error(describe(`was killed by ${signal}`)));
      else if (code !== 0 && !options.allowFailure) reject(new Error(describe(`exited with code ${code}`)));
      else resolve({ code, stdout, stderr });
    });
  });
}

/**
 * Removes a directory that a container engine may have left mounts in (overlay layers, shm, netns):
 * `rm -rf` cannot cross a mount point, so everything mounted under it is detached first, deepest first.
 */
export async function removeDirWithMounts(dir: string): Promise<void> {
  const root = path.resolve(dir);
  const mountPoints = (await readFile('/proc/self/mountinfo', 'utf8'))
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((mountPoint): mountPoint is string => mountPoint !== undefined)
    .map(decodeMountInfoPath)
    .filter((mountPoint) => mountPoint === root || mountPoint.startsWith(`${root}/`))
    .sort((a, b) => b.length - a.length);
  for (const mountPoint of new Set(mountPoints)) {
    await run('umount', ['--lazy', mountPoint], { allowFailure: true });
  }
  await rm(root, { recursive: true, force: true });
}

/** mountinfo escapes space, tab, newline and backslash as three-digit octal. */
function decodeMountInfoPath(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}
