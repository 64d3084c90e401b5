import test from 'ava';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DetachKeyWatcher, parseDetachKeys } from '../../runtime-agent/client/terminal.js';
import {
  encodeFrame,
  FrameDecoder,
  TerminalProtocolError,
  type TerminalFrame,
} from '../../runtime-agent/container/attach/terminal-frames.js';
import { AgentDaemon } from '../helpers/agent-daemon.js';
import { layerOfTar, pushLayout, writeImageLayout } from '../helpers/agent-images.js';
import { eventually } from '../helpers/eventually.js';
import { RegistryProcess } from '../helpers/registry-process.js';
import { createBusyboxRootfs, tarDirectory } from '../helpers/test-images.js';
import { TmuxTerminal } from '../helpers/tmux-terminal.js';

/**
 * Terminals end to end: the berth-agent CLI run inside a real terminal (tmux), real runc, a busybox image
 * pulled from a Berth registry. What is asserted is what a user sees on the screen and the CLI's exit code.
 */

let registry: RegistryProcess;
let agent: AgentDaemon;
let workDir: string;
let image: string;
const TMUX_SERVER = `berth-tty-${process.pid}-${randomBytes(3).toString('hex')}`;
const PROMPT = /^\/ # ?$/m;

test.before(async () => {
  workDir = await mkdtemp(path.join(tmpdir(), 'berth-terminal-'));
  [registry, agent] = await Promise.all([RegistryProcess.start(), AgentDaemon.start()]);
  const rootfs = path.join(workDir, 'rootfs');
  await createBusyboxRootfs(rootfs, 'terminal-test');
  await tarDirectory(rootfs, `${rootfs}.tar`);
  const layout = path.join(workDir, 'layout');
  await writeImageLayout(layout, 'v1', { layers: [await layerOfTar(await readFile(`${rootfs}.tar`), 'gzip')] });
  image = `${registry.host}/terminal/busybox:v1`;
  await pushLayout(layout, 'v1', image);
  await agent.cli(['pull', image]);
});

test.after.always(async () => {
  await TmuxTerminal.killServer(TMUX_SERVER);
  await agent?.destroy();
  await registry?.destroy();
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

/** The CLI in a new terminal of the given size. */
function terminal(args: string[], size = { columns: 70, rows: 20 }): Promise<TmuxTerminal> {
  const command = agent.cliCommand(args);
  return TmuxTerminal.start(TMUX_SERVER, [command.file, ...command.args], size);
}

async function inspect(container: string): Promise<{ State: { Status: string; ExitCode: number }; Config: { Tty: boolean } }> {
  return JSON.parse((await agent.cli(['inspect', container])).stdout)[0];
}

/** Types a command and waits for a line of output it alone prints (the typed line itself does not match). */
async function typeAndWait(screen: TmuxTerminal, command: string, output: RegExp): Promise<string> {
  await screen.typeLine(command);
  return screen.waitFor(output);
}

/**
 * Types `command` again until `output` shows: busybox's shell sets its terminal mode with a flush when it starts
 * reading a line, so keys typed in the few milliseconds after a full-screen program exits are discarded (as on any
 * terminal; a person would retype them).
 */
async function typeUntilShown(screen: TmuxTerminal, command: string, output: RegExp, attempts = 5): Promise<string> {
  for (let attempt = 1; ; attempt++) {
    await screen.typeLine(command);
    try {
      return await screen.waitFor(output, 2_000);
    } catch (error) {
      if (attempt === attempts) throw error;
    }
  }
}

test.serial(
  'run -it: a shell prompt, output, the terminal size and its resizes; ctrl-p ctrl-q detaches, attach comes back, exit 3 is the exit code',
  async (t) => {
    const first = await terminal(['run', '-it', '--name', 'shell', image, 'sh']);
    try {
      await first.waitFor(PROMPT);
      await typeAndWait(first, 'echo "sum=$((6 * 7))"', /^sum=42$/m);
      await typeAndWait(first, 'stty size', /^20 70$/m);
      await first.resize({ columns: 100, rows: 30 });
      await typeAndWait(first, 'clear; stty size', /^30 100$/m);
      await typeAndWait(first, 'echo "TERM is $TERM, stdin is $(tty)"', /^TERM is xterm, stdin is \/dev\/pts\/0$/m);
      // Job control: a background job, brought to the foreground and interrupted with ctrl-c.
      await typeAndWait(first, 'sleep 300 & jobs', /\[1\]\+ +Running +sleep 300/);
      await first.typeLine('fg');
      await first.waitFor(/^sleep 300$/m);
      await first.keys('C-c');
      await typeAndWait(first, 'clear; jobs; echo "jobs left: $(jobs | wc -l)"', /^jobs left: 0$/m);
      await first.keys('C-p', 'C-q');
      t.is(await first.exitCode(), 0, 'detaching ends the CLI with 0');
      t.is((await inspect('shell')).State.Status, 'running');
    } finally {
      await first.kill();
    }

    const second = await terminal(['attach', 'shell'], { columns: 90, rows: 25 });
    try {
      await typeAndWait(second, 'echo "still $((40 + 2)) here"; stty size', /^still 42 here\n25 90$/m);
      await second.typeLine('exit 3');
      t.is(await second.exitCode(), 3, "the container's exit code is the CLI's");
      const exited = await eventually(
        () => inspect('shell'),
        (state) => state.State.Status === 'exited',
      );
      t.is(exited.State.ExitCode, 3);
    } finally {
      await second.kill();
      await agent.cli(['rm', '-f', 'shell'], { allowFailure: true });
    }
  },
);

test.serial('top and vi draw and take keys on the terminal', async (t) => {
  const screen = await terminal(['run', '-it', '--rm', '--name', 'editor', image, 'sh'], { columns: 80, rows: 24 });
  try {
    await screen.waitFor(PROMPT);
    await typeAndWait(screen, 'top', /PID +PPID +USER +STAT/);
    await screen.keys('q');
    await screen.waitFor(PROMPT);
    await screen.typeLine('clear; vi /tmp/note');
    await screen.waitFor(/^~/m);
    await screen.keys('i');
    await screen.keys('-l', 'written in vi');
    // Alone, so that vi does not read Escape and the next key as one escape sequence.
    await screen.keys('Escape');
    await screen.waitFor(/written in vi/);
    await new Promise((resolve) => setTimeout(resolve, 300));
    await screen.typeLine(':wq');
    // vi restores the screen as it exits, leaving only the prompt: until then, what is typed goes to vi.
    await screen.waitFor(/^\/ #$/);
    await typeUntilShown(screen, 'clear; cat /tmp/note', /^written in vi$/m);
    await screen.typeLine('exit');
    t.is(await screen.exitCode(), 0);
    t.false((await agent.cli(['ps', '-a'])).stdout.includes('editor'), 'run -it --rm removes the container once it exits');
  } finally {
    await screen.kill();
  }
});

// The command ends at once: its output, its size and its exit code must not depend on how soon the client attaches.
test.serial(
  'run -t without -i: a command that ends at once shows its output on a terminal of the client size from the start, the CLI exits with its exit code, and --rm removes the container',
  async (t) => {
    const screen = await terminal(
      ['run', '-t', '--rm', '--name', 'quick', image, 'sh', '-c', 'stty size; test -t 0 && echo on-a-tty; exit 5'],
      {
        columns: 77,
        rows: 21,
      },
    );
    try {
      const exitCode = await screen.exitCode();
      const shown = await screen.screen();
      t.is(exitCode, 5, shown);
      t.regex(shown, /^21 77\r?$/m);
      t.regex(shown, /^on-a-tty\r?$/m);
      await eventually(
        () => agent.cli(['ps', '-a']),
        (result) => !result.stdout.includes('quick'),
      );
    } finally {
      await screen.kill();
    }
  },
);

test.serial('exec -it into a running container gets a terminal of its own, and its exit code', async (t) => {
  await agent.cli(['run', '-d', '-it', '--name', 'host', image, 'sh']);
  const screen = await terminal(['exec', '-it', 'host', 'sh'], { columns: 66, rows: 18 });
  try {
    await screen.waitFor(PROMPT);
    await typeAndWait(screen, 'stty size; echo "term=$TERM"', /^18 66\nterm=xterm$/m);
    await typeAndWait(screen, 'tty', /^\/dev\/pts\/[1-9]\d*$/m);
    await screen.typeLine('exit 7');
    t.is(await screen.exitCode(), 7);
    t.is((await inspect('host')).State.Status, 'running', 'the container goes on after its exec ends');
  } finally {
    await screen.kill();
    await agent.cli(['rm', '-f', 'host']);
  }
});

test.serial('exec -it: what is typed reaches the process, ctrl-d ends its input, and its exit code comes back', async (t) => {
  await agent.cli(['run', '-d', '--name', 'typing', image, 'sleep', '300']);
  const screen = await terminal(['exec', '-it', 'typing', 'sh', '-c', 'read line; echo "got <$line>"; wc -l; exit 4']);
  try {
    await typeAndWait(screen, 'hello there', /^got <hello there>$/m);
    await screen.typeLine('one');
    await screen.typeLine('two');
    await screen.keys('C-d');
    await screen.waitFor(/^\s*2$/m);
    t.is(await screen.exitCode(), 4);
  } finally {
    await screen.kill();
    await agent.cli(['rm', '-f', 'typing']);
  }
});

test.serial(
  'exec -i without -t: stdin streams to the process and its end closes it; stdout, stderr and the exit code come back',
  async (t) => {
    await agent.cli(['run', '-d', '--name', 'piped', image, 'sleep', '300']);
    try {
      // More than a pipe holds, so the relay must wait for the reader; wc answers only once its input has ended.
      const input = `first\n${'x'.repeat(300_000)}\nlast\n`;
      const counted = await agent.cli(['exec', '-i', 'piped', 'sh', '-c', 'wc -c; echo on-stderr >&2; test -t 0 || echo no-tty; exit 6'], {
        input,
        allowFailure: true,
      });
      t.is(counted.code, 6);
      t.is(counted.stdout, `${input.length}\nno-tty\n`);
      t.is(counted.stderr, 'on-stderr\n');
      t.is((await agent.cli(['exec', 'piped', 'cat'], { input: 'not sent\n' })).stdout, '', 'without -i the stdin is closed at once');

      // A conversation: each line is answered before the next is written, so nothing waits for the input to end.
      const command = agent.cliCommand([
        'exec',
        '-i',
        'piped',
        'sh',
        '-c',
        'while read line; do echo "got $line"; done; echo done; exit 3',
      ]);
      const child = spawn(command.file, command.args, { stdio: ['pipe', 'pipe', 'pipe'] });
      let stdout = '';
      child.stdout.setEncoding('utf8').on('data', (text: string) => (stdout += text));
      const exited = new Promise<number | null>((resolve, reject) => {
        child.once('close', resolve);
        setTimeout(() => reject(new Error(`exec -i did not end within 30 s; it printed: ${stdout}`)), 30_000).unref();
      });
      try {
        child.stdin.write('one\n');
        await eventually(
          async () => stdout,
          (seen) => seen === 'got one\n',
        );
        child.stdin.end('two\n');
        t.is(await exited, 3);
        t.is(stdout, 'got one\ngot two\ndone\n');
      } finally {
        child.kill('SIGKILL');
      }
    } finally {
      await agent.cli(['rm', '-f', 'piped']);
    }
  },
);

test.serial('start -ai starts a stopped -it container and attaches to its terminal', async (t) => {
  const created = await agent.cli(['run', '-d', '-it', '--name', 'again', image, 'sh']);
  t.truthy(created.stdout.trim());
  await agent.cli(['stop', '-t', '0', 'again']);
  const screen = await terminal(['start', '-ai', 'again']);
  try {
    await typeAndWait(screen, 'echo "back $((1 + 1))"', /^back 2$/m);
    await screen.typeLine('exit 9');
    t.is(await screen.exitCode(), 9);
  } finally {
    await screen.kill();
    await agent.cli(['rm', '-f', 'again']);
  }
});

test.serial(
  'run -i without -t pipes stdin and closes it at its end; -it from a pipe, bad detach keys and a missing command are refused',
  async (t) => {
    const piped = await agent.cli(['run', '-i', '--rm', image, 'sh', '-c', 'cat; test -t 0 || echo no-tty'], { input: 'hi\n' });
    t.is(piped.stdout, 'hi\nno-tty\n');
    const before = (await agent.cli(['ps', '-a', '-q'])).stdout;
    const refused = await agent.cli(['run', '-it', '--rm', image, 'sh'], { input: 'exit\n', allowFailure: true });
    t.is(refused.code, 1);
    t.regex(refused.stderr, /the input device is not a TTY/);
    t.is((await agent.cli(['ps', '-a', '-q'])).stdout, before, 'refused before anything is created');
    const badKeys = await agent.cli(['run', '-it', '--detach-keys', 'ctrl-1', image, 'sh'], { allowFailure: true });
    t.regex(badKeys.stderr, /Invalid detach keys \(ctrl-1\) provided/);
    const missing = await agent.cli(['run', '-t', '--rm', image, '/no/such/program'], { allowFailure: true });
    t.is(missing.code, 127, "docker's exit code for a command that does not exist, on a terminal too");
    t.regex(missing.stderr, /no\/such\/program/);
    t.is((await agent.cli(['ps', '-a', '-q'])).stdout, before, 'the --rm container that could not start is removed');
  },
);

test.serial('a -t container keeps its terminal through an agent SIGKILL and restart, and attach works after it', async (t) => {
  const first = await terminal(['run', '-it', '--name', 'survivor', image, 'sh']);
  try {
    await first.waitFor(PROMPT);
    await typeAndWait(first, 'export MARK=$((100 + 23))', PROMPT);
    await first.keys('C-p', 'C-q');
    t.is(await first.exitCode(), 0);
  } finally {
    await first.kill();
  }
  await agent.killAndRestart();
  const second = await terminal(['attach', '--detach-keys', 'ctrl-x', 'survivor'], { columns: 60, rows: 15 });
  try {
    await typeAndWait(second, 'echo "mark=$MARK"; stty size', /^mark=123\n15 60$/m);
    await second.keys('C-x');
    t.is(await second.exitCode(), 0, '--detach-keys replaces ctrl-p ctrl-q');
    t.is((await inspect('survivor')).State.Status, 'running');
  } finally {
    await second.kill();
    await agent.cli(['rm', '-f', 'survivor']);
  }
});

test.serial(
  'attach to a container without -t prints its output from then on and ends with its exit code; start -a refuses it',
  async (t) => {
    await agent.cli([
      'run',
      '-d',
      '--name',
      'plain',
      image,
      'sh',
      '-c',
      'echo early; sleep 6; for i in 1 2 3; do echo "tick $i"; done; exit 4',
    ]);
    const attach = await agent.cli(['attach', 'plain'], { allowFailure: true });
    t.is(attach.code, 4, "the container's exit code");
    t.is(attach.stdout, 'tick 1\ntick 2\ntick 3\n', 'what came after the attach, once');
    const start = await agent.cli(['start', '-a', 'plain'], { allowFailure: true });
    t.is(start.code, 1);
    t.regex(start.stderr, /start -a works with containers run with -t here; use logs -f plain/);
    const stopped = await agent.cli(['attach', 'plain'], { allowFailure: true });
    t.regex(stopped.stderr, /You cannot attach to a stopped container, start it first/);
    await agent.cli(['rm', '-f', 'plain']);
  },
);

test('terminal frames survive any chunking and malformed ones are refused', (t) => {
  const frames: TerminalFrame[] = [
    { type: 'data', data: Buffer.from('héllo\r\n') },
    { type: 'resize', size: { columns: 132, rows: 43 } },
    { type: 'stderr', data: Buffer.from('oops\n') },
    { type: 'eof' },
    { type: 'exit', exitCode: 130 },
  ];
  const bytes = Buffer.concat(frames.map(encodeFrame));
  const decoder = new FrameDecoder();
  const decoded = [...bytes].flatMap((byte) => decoder.push(Buffer.from([byte])));
  t.deepEqual(decoded, frames);
  t.throws(() => new FrameDecoder().push(Buffer.from([9, 0, 0, 0, 0])), { instanceOf: TerminalProtocolError });
  t.throws(() => new FrameDecoder().push(Buffer.from([2, 0, 0, 0, 4, 0, 0, 0, 24])), { instanceOf: TerminalProtocolError });
  t.throws(() => new FrameDecoder().push(Buffer.from([1, 0xff, 0xff, 0xff, 0xff])), { instanceOf: TerminalProtocolError });
  t.throws(() => new FrameDecoder().push(Buffer.from([5, 0, 0, 0, 1, 0])), { instanceOf: TerminalProtocolError });
});

test("detach keys are docker's: ctrl-p ctrl-q by default, held back until they differ, never sent when they match", (t) => {
  t.deepEqual([...parseDetachKeys('ctrl-p,ctrl-q')], [16, 17]);
  t.deepEqual([...parseDetachKeys('ctrl-@,ctrl-[,a,ctrl-Z')], [0, 27, 97, 26]);
  t.throws(() => parseDetachKeys('ctrl-pq'), { message: /Invalid detach keys \(ctrl-pq\) provided/ });
  const watcher = new DetachKeyWatcher(parseDetachKeys('ctrl-p,ctrl-q'));
  t.deepEqual(watcher.feed(Buffer.from('ls\x10')), { forward: Buffer.from('ls'), detached: false });
  t.deepEqual(
    watcher.feed(Buffer.from('x')),
    { forward: Buffer.from('\x10x'), detached: false },
    'a held ctrl-p goes out with the next key',
  );
  t.deepEqual(watcher.feed(Buffer.from('\x10\x10')), { forward: Buffer.from('\x10'), detached: false });
  t.deepEqual(watcher.feed(Buffer.from('\x11rest')), { forward: Buffer.alloc(0), detached: true });
});
