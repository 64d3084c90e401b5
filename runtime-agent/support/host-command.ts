import { spawn } from 'node:child_process';

/**
 * Runs one of the host's tools (ip, iptables-restore, mount, runc, cp...). Node has no netlink, netfilter or
 * mount API, and these tools are what an administrator uses to inspect the result too. A failure rejects
 * with a HostCommandError naming the command line and what the tool printed on stderr.
 */
export function runHostCommand(command: string, args: readonly string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    child.stdin.end(input);
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (text: string) => (stdout += text));
    child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
    child.once('error', (error) => reject(new HostCommandError(command, args, input, error.message)));
    child.once('close', (code, signal) => {
      if (code === 0) resolve(stdout);
      else reject(new HostCommandError(command, args, input, stderr.trim() || `exited with ${code ?? signal}`));
    });
  });
}

export class HostCommandError extends Error {
  constructor(
    command: string,
    args: readonly string[],
    input: string | undefined,
    readonly stderr: string,
  ) {
    const stdin = input === undefined ? '' : `\n(with input:\n${input.trimEnd()})`;
    super(`${[command, ...args].join(' ')} failed: ${stderr}${stdin}`);
  }
}

/** Removal of something already gone: what makes the cleanup functions idempotent. */
export function isAlreadyGone(error: unknown): boolean {
  return error instanceof HostCommandError && /Cannot find device|No such file or directory/.test(error.stderr);
}

/** Creation of something already there: what makes the setup functions idempotent. */
export function isAlreadyThere(error: unknown): boolean {
  return error instanceof HostCommandError && /File exists/.test(error.stderr);
}
