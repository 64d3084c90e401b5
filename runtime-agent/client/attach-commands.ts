import type { Command } from 'commander';
import type { ExecRequest } from '../api.js';
import { printLogEntries } from '../container/logs/log-formatter.js';
import { AgentRequestError, type AgentClient } from './agent-client.js';
import { AgentErrors } from '../errors.js';
import { DEFAULT_TERMINAL_SIZE } from '../runtime/pty-process.js';
import { runPipedSession } from './piped-session.js';
import { DEFAULT_DETACH_KEYS, parseDetachKeys, runTerminalSession, terminalSizeOf, type SessionEnd } from './terminal.js';

/** docker's terminal verbs: `attach`, and the attached halves of `run -t`, `start -a` and `exec -t`. */

type ClientOf = (command: Command) => AgentClient;

export interface AttachFlags {
  interactive: boolean;
  /** `--detach-keys` as typed; docker's ctrl-p,ctrl-q when absent. */
  detachKeys: string | undefined;
}

export function addAttachCommand(program: Command, client: ClientOf): void {
  program
    .command('attach')
    .description('attach to a running container: its terminal (detach with ctrl-p ctrl-q), or the output of one without -t')
    .argument('<container>')
    .option('--no-stdin', 'do not send what is typed to the container')
    .option('--detach-keys <keys>', `keys that detach (default ${DEFAULT_DETACH_KEYS})`)
    .action(async (container: string, options: { stdin: boolean; detachKeys?: string }, command: Command) => {
      process.exitCode = await attachTerminal(client(command), container, { interactive: options.stdin, detachKeys: options.detachKeys });
    });
}

/**
 * Attaches to a `-t` container until it exits (its exit code) or the user detaches (0). What is typed goes
 * to it only when it was run with `-i`, as with docker; this terminal is left alone otherwise.
 */
export async function attachTerminal(agent: AgentClient, container: string, flags: AttachFlags): Promise<number> {
  const { Config, State } = await agent.inspect(container);
  if (State.Status !== 'running') throw new Error('You cannot attach to a stopped container, start it first');
  if (!Config.Tty) return followOutput(agent, container);
  return terminalSession(agent, container, { ...flags, interactive: flags.interactive && Config.OpenStdin }, false);
}

/**
 * A container without a terminal: its output from now on, until it exits (its exit code). Its stdin, if
 * any, belongs to the client that ran it (docker's StdinOnce), so nothing is sent.
 */
async function followOutput(agent: AgentClient, container: string): Promise<number> {
  await printLogEntries(agent.logs(container, { follow: true, tail: '0' }), process, false);
  return (await agent.act<{ exitCode: number }>(container, 'wait')).exitCode;
}

/** `run -t` and `start -a`: starts a `-t` container and attaches to it in one request. */
export function startAttached(agent: AgentClient, container: string, flags: AttachFlags): Promise<number> {
  return terminalSession(agent, container, flags, true);
}

/**
 * `run -t --rm`: as `startAttached`, and once the container has exited (not when the user detached), returns
 * only after the daemon has removed it, as docker's CLI waits for its AutoRemove: the terminal's exit code
 * comes from the container's shim, ahead of the daemon's removal.
 */
export async function startAttachedThenRemoved(agent: AgentClient, container: string, flags: AttachFlags): Promise<number> {
  const end = await startTerminalSession(agent, container, flags, true);
  if (end.kind === 'exited') await waitUntilRemoved(agent, container);
  return exitCodeOf(end);
}

/** The daemon's wait answers once the exit is handled, removal included; 404 when the container is already gone. */
async function waitUntilRemoved(agent: AgentClient, container: string): Promise<void> {
  try {
    await agent.act(container, 'wait');
  } catch (error) {
    if (!(error instanceof AgentRequestError && error.code === AgentErrors.CONTAINER_UNKNOWN.code)) throw error;
  }
}

async function terminalSession(agent: AgentClient, container: string, flags: AttachFlags, start: boolean): Promise<number> {
  return exitCodeOf(await startTerminalSession(agent, container, flags, start));
}

async function startTerminalSession(agent: AgentClient, container: string, flags: AttachFlags, start: boolean): Promise<SessionEnd> {
  const detachKeys = parseDetachKeys(flags.detachKeys ?? DEFAULT_DETACH_KEYS);
  checkInputIsTerminal(flags.interactive);
  const connection = await agent.attachTerminal(container, { start });
  return runTerminalSession(connection, { ...sessionStreams(flags), detachKeys });
}

/** `exec -t`: the new process's exit code, or 0 when the user detaches (the process keeps running). */
export async function execOnTerminal(agent: AgentClient, container: string, request: ExecRequest, flags: AttachFlags): Promise<number> {
  const detachKeys = parseDetachKeys(flags.detachKeys ?? DEFAULT_DETACH_KEYS);
  checkInputIsTerminal(flags.interactive);
  const size = terminalSizeOf(process.stdout) ?? DEFAULT_TERMINAL_SIZE;
  const connection = await agent.execOnTerminal(container, request, { interactive: flags.interactive, size });
  return exitCodeOf(await runTerminalSession(connection, { ...sessionStreams(flags), detachKeys }));
}

/** `exec -i` without `-t`: this side's stdin is the process's until it ends; its exit code. */
export async function execWithStdin(agent: AgentClient, container: string, request: ExecRequest): Promise<number> {
  const connection = await agent.execWithStdin(container, request);
  return exitCodeOf(await runPipedSession(connection, { input: process.stdin, stdout: process.stdout, stderr: process.stderr }));
}

/** docker refuses `-it` from a pipe: raw mode, echo and line editing need a terminal on this side. */
export function checkInputIsTerminal(interactive: boolean): void {
  if (interactive && !process.stdin.isTTY) throw new Error('the input device is not a TTY');
}

function sessionStreams(flags: AttachFlags) {
  return { interactive: flags.interactive, input: process.stdin, output: process.stdout };
}

function exitCodeOf(end: SessionEnd): number {
  if (end.kind === 'exited') return end.exitCode;
  if (end.kind === 'detached') return 0;
  throw new Error('lost the connection to the container (did the berth-agent daemon exit?)');
}
