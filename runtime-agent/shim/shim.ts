#!/usr/bin/env node
import { spawn } from 'node:child_process';
import { appendFileSync, watch } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import type { Writable } from 'node:stream';
import { createInterface } from 'node:readline';
import path from 'node:path';
import { TerminalHub } from '../container/attach/terminal-hub.js';
import { JsonLogWriter } from '../container/logs/json-log-writer.js';
import { spawnInPty } from '../runtime/pty-process.js';
import { writeJsonAtomic, writeJsonWhole } from '../support/json-file.js';
import { exitCodeOf } from '../../platform/process-exit.js';
import { watchOutOfMemory } from './oom-watch.js';
import { logTerminalOutput } from './terminal-log.js';
import { BundleFile, type ExitRecord, type ShimArguments, type ShimMessage } from './shim-protocol.js';

/**
 * The container shim: started detached by the daemon ahead of need (so a run does not wait for a Node
 * start-up), it waits for a run's arguments as one JSON line on stdin, and after the run for the next one
 * (the daemon reuses it); it quits when stdin ends (the daemon retired it or went away). For each run it
 * moves into the bundle directory (how a restarted daemon recognizes it), runs `runc run` in the foreground
 * (runc stays the container's parent and exits with its status), copies the container's stdout and stderr
 * (or, with `-t`, its terminal) into the JSON-lines log, serves the clients that attach, reports the start
 * on stdout, records the exit and reports it.
 * It ignores the signals a terminal or a dying daemon would send: stopping a container is `runc kill`.
 */

/** The safety net for a pid file whose creation inotify did not report. */
const PID_POLL_MS = 100;
/** A screenful or two and then some: the first prompt of a shell, or a program's start-up output. */
const TERMINAL_BACKLOG_BYTES = 64 * 1024;
/**
 * How long a `run -t` start waits for the daemon to connect before it runs the process anyway (as if detached):
 * the daemon connects as soon as it reads that the socket listens, unless it died in between.
 */
const FIRST_CLIENT_TIMEOUT_MS = 30_000;

/** The process the shim watches, and what to do once its exit is recorded. */
interface SupervisedRun {
  exited: Promise<number>;
  ended(exitCode: number): Promise<void>;
}

/**
 * One run per line of arguments, one after the other: the daemon gives the shim of an ended run the next
 * start, which then needs no Node start-up. The end of stdin (the daemon retired the shim, or went away) ends
 * the shim once its run is over.
 */
async function main(): Promise<void> {
  // A daemon that went away leaves the pipe without a reader: the run goes on, and exit.json has its end.
  process.stdout.on('error', () => undefined);
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(signal, () => undefined);
  for await (const line of createInterface({ input: process.stdin, crlfDelay: Infinity })) {
    const args = JSON.parse(line) as ShimArguments;
    await superviseRun(args).catch((error: Error) => fail(args, error));
    // Idle, it is no bundle's shim: a restarted daemon takes a shim working in a bundle for that container's.
    process.chdir('/');
  }
}

async function superviseRun(args: ShimArguments): Promise<void> {
  process.chdir(args.bundle);
  const file = (name: string) => path.join(args.bundle, name);
  const logs = await JsonLogWriter.open(args.logDirectory, { maxSizeBytes: args.logMaxSizeBytes, maxFiles: args.logMaxFiles });
  const runtimeArgs = [
    '--root',
    args.runtimeRoot,
    '--log',
    file(BundleFile.runtimeLog),
    '--log-format',
    'json',
    'run',
    '--bundle',
    args.bundle,
    '--pid-file',
    file(BundleFile.pid),
    args.containerId,
  ];
  const run = args.tty ? await runOnTerminal(args, runtimeArgs, logs) : await runWithPipes(args, runtimeArgs, logs);
  const pid = await waitForPid(file(BundleFile.pid), run.exited);
  const oom = pid !== undefined && args.watchOutOfMemory ? watchOutOfMemory(args.runtime, args.runtimeRoot, args.containerId) : undefined;
  if (pid !== undefined) report({ started: true, pid });
  const exitCode = await run.exited;
  const durable = !args.removedAfterRun;
  await logs.close(durable);
  const record: ExitRecord = { exitCode, finishedAt: new Date().toISOString(), oomKilled: (await oom?.outcome()) === true };
  if (pid === undefined) {
    record.startError = await runtimeError(file(BundleFile.runtimeLog));
    record.exitCode = startFailureExitCode(record.startError);
    report({ started: false, message: record.startError, exitCode: record.exitCode });
  }
  await (durable ? writeJsonAtomic : writeJsonWhole)(file(BundleFile.exit), record);
  await run.ended(record.exitCode);
  report({ exited: record });
}

/** `runc run` with its stdio piped: stdout and stderr to the log, stdin from the first attached client (`-i`). */
async function runWithPipes(args: ShimArguments, runtimeArgs: string[], logs: JsonLogWriter): Promise<SupervisedRun> {
  const stdinServer = args.openStdin ? await listenOn(BundleFile.stdinSocket) : undefined;
  const runtime = spawn(args.runtime, runtimeArgs, { stdio: ['pipe', 'pipe', 'pipe'] });
  // Without -i the process reads EOF at once, as from /dev/null.
  if (stdinServer) feedStdin(stdinServer, runtime.stdin);
  else runtime.stdin.end();
  runtime.stdout.pipe(logs.stream('stdout'));
  runtime.stderr.pipe(logs.stream('stderr'));
  const exited = new Promise<number>((resolve) => {
    runtime.once('close', (code, signal) => resolve(exitCodeOf(code, signal)));
  });
  return { exited, ended: async () => undefined };
}

/**
 * `runc run` on a pseudo-terminal this shim holds (config.json has `terminal: true`): runc gives the
 * container a terminal of its own and relays it to ours. Its output goes to the log (as stdout, as docker
 * logs a tty) and to the clients of `terminal.sock`; the terminal stays here, so it outlives the daemon.
 * When the shim exits its clients are let go: one that must see the end connects before the start.
 */
async function runOnTerminal(args: ShimArguments, runtimeArgs: string[], logs: JsonLogWriter): Promise<SupervisedRun> {
  const server = await listenOn(BundleFile.terminalSocket);
  const firstClient = args.attachBeforeStart ? await awaitFirstClient(server) : undefined;
  const terminal = await spawnInPty(args.runtime, runtimeArgs, { cwd: args.bundle, size: args.consoleSize });
  logTerminalOutput(terminal, logs.stream('stdout'));
  const hub = new TerminalHub(terminal, { acceptInput: args.openStdin, backlogBytes: TERMINAL_BACKLOG_BYTES });
  if (firstClient) hub.add(firstClient);
  server.on('connection', (socket) => hub.add(socket));
  return {
    exited: terminal.exited,
    ended: async (exitCode) => {
      server.close();
      hub.end(exitCode);
    },
  };
}

/**
 * Says on stdout that `terminal.sock` listens and waits for the daemon's connection. What the client sends
 * meanwhile (its size) stays in the socket until the hub reads it.
 */
async function awaitFirstClient(server: Server): Promise<Socket | undefined> {
  const timeout = new AbortController();
  const connected = once(server, 'connection', { signal: timeout.signal }).then(([socket]) => socket as Socket);
  report({ terminalListening: true });
  const timer = setTimeout(() => timeout.abort(), FIRST_CLIENT_TIMEOUT_MS);
  try {
    return await connected.catch(() => undefined);
  } finally {
    clearTimeout(timer);
  }
}

/** The shim's own failure, where the daemon's error message points: `shim.log` in the bundle. */
function fail(args: ShimArguments | undefined, error: Error): void {
  const text = `${new Date().toISOString()} berth shim: ${error.stack ?? error.message}\n`;
  if (args) appendFileSync(path.join(args.bundle, BundleFile.shimLog), text);
  process.exit(1);
}

/** A socket in the bundle (our working directory) the daemon connects to when a client attaches. */
async function listenOn(name: string): Promise<Server> {
  await rm(name, { force: true });
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(name, () => resolve());
  });
  server.unref();
  return server;
}

/**
 * docker's StdinOnce: the first client that attaches writes the process's stdin, and when it is done the
 * stdin closes (the process reads EOF). Until someone attaches, reads in the container wait.
 */
function feedStdin(server: Server, stdin: Writable): void {
  // The process may exit without reading; what is still being written then has nowhere to go.
  stdin.on('error', () => undefined);
  server.once('connection', (socket) => {
    server.close();
    socket.on('error', () => stdin.end());
    socket.pipe(stdin);
  });
}

/**
 * The container's pid once runc has written its pid file (it does so only after a successful start), or
 * undefined when runc exits without it. runc writes the file under another name and renames it: inotify on
 * the directory wakes this at once, where polling would cost a file system call every few milliseconds of
 * a start that competes with runc for the CPU.
 */
async function waitForPid(pidFile: string, exited: Promise<number>): Promise<number | undefined> {
  let changed = false;
  let wake: (() => void) | undefined;
  const notify = () => {
    changed = true;
    wake?.();
  };
  const watcher = watch(path.dirname(pidFile), notify).on('error', () => undefined);
  let done = false;
  void exited.then(() => {
    done = true;
    notify();
  });
  try {
    for (;;) {
      const text = await readFile(pidFile, 'utf8').catch(() => undefined);
      if (text !== undefined) return Number(text.trim());
      if (done) return undefined;
      if (!changed) {
        await new Promise<void>((resolve) => {
          wake = resolve;
          setTimeout(resolve, PID_POLL_MS);
        });
      }
      changed = false;
    }
  } finally {
    watcher.close();
  }
}

/** One line to the daemon: the terminal listening, the start, then the exit. */
function report(message: ShimMessage): void {
  process.stdout.write(`${JSON.stringify(message)}\n`);
}

/** runc's own last error, from its JSON log. */
async function runtimeError(logFile: string): Promise<string> {
  const lines = (await readFile(logFile, 'utf8').catch(() => '')).trim().split('\n').reverse();
  for (const line of lines) {
    try {
      const entry = JSON.parse(line) as { level?: string; msg?: string };
      if (entry.level === 'error' && entry.msg) return entry.msg;
    } catch {
      continue;
    }
  }
  return 'the OCI runtime failed to start the container';
}

/** Docker's exit codes for a process that could not start: 127 not found, 126 not executable. */
function startFailureExitCode(message: string): number {
  if (/executable file not found|no such file or directory/.test(message)) return 127;
  if (/permission denied/.test(message)) return 126;
  return 125;
}

main().catch((error: Error) => fail(undefined, error));
