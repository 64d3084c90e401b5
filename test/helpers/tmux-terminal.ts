import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { run } from './exec.js';

/** Bounds every wait for the screen: a run or an attach that hangs fails its test instead of the file. */
const DEFAULT_WAIT_MS = 20_000;
const POLL_MS = 100;
/** Printed when the command ends, with its exit code; the pane stays open so the screen can still be read. */
const EXIT_MARKER = 'COMMAND-EXITED';

/**
 * A real terminal for a test to type into and read: a detached tmux session of a given size running one
 * command, on a tmux server of its own (`-L`), so nothing here touches another tmux or another test's.
 */
export class TmuxTerminal {
  private constructor(
    private readonly server: string,
    private readonly session: string,
  ) {}

  /** `server` groups the sessions of one test file; kill it with `TmuxTerminal.killServer`. */
  static async start(server: string, command: readonly string[], size: { columns: number; rows: number }): Promise<TmuxTerminal> {
    const session = `t${randomBytes(4).toString('hex')}`;
    const script = `${command.map(shellQuote).join(' ')}; echo "${EXIT_MARKER}=$?"; sleep 600`;
    // A tmux server exits with its last session: a session started just after another was killed could reach a
    // server on its way out ("server exited unexpectedly"). This one stays until killServer.
    const newSession = ['new-session', '-d', '-s', session, '-x', String(size.columns), '-y', String(size.rows), script];
    await tmux(server, [...newSession, ';', 'set-option', '-g', 'exit-empty', 'off']);
    return new TmuxTerminal(server, session);
  }

  static async killServer(server: string): Promise<void> {
    await run('tmux', ['-L', server, 'kill-server'], { allowFailure: true, timeoutMs: 10_000 });
    // tmux leaves its socket file behind.
    await rm(path.join(process.env.TMUX_TMPDIR ?? '/tmp', `tmux-${process.getuid!()}`, server), { force: true });
  }

  /** Types `text` literally, then Enter. */
  async typeLine(text: string): Promise<void> {
    await tmux(this.server, ['send-keys', '-t', this.session, '-l', text]);
    await this.keys('Enter');
  }

  /** tmux key names: `C-p`, `Escape`, `Enter`. */
  async keys(...names: string[]): Promise<void> {
    await tmux(this.server, ['send-keys', '-t', this.session, ...names]);
  }

  async resize(size: { columns: number; rows: number }): Promise<void> {
    await tmux(this.server, ['resize-window', '-t', this.session, '-x', String(size.columns), '-y', String(size.rows)]);
  }

  /** What the terminal shows now, trailing blank lines trimmed. */
  async screen(): Promise<string> {
    return (await tmux(this.server, ['capture-pane', '-p', '-t', this.session])).trimEnd();
  }

  /** Waits until the screen matches; returns the screen, or throws with it after `timeoutMs`. */
  async waitFor(pattern: RegExp, timeoutMs = DEFAULT_WAIT_MS): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const screen = await this.screen();
      if (pattern.test(screen)) return screen;
      if (Date.now() > deadline) throw new Error(`the terminal did not show ${pattern} within ${timeoutMs} ms; it shows:\n${screen}`);
      await sleep(POLL_MS);
    }
  }

  /** The command's exit code, once it has ended. */
  async exitCode(timeoutMs = DEFAULT_WAIT_MS): Promise<number> {
    const screen = await this.waitFor(new RegExp(`${EXIT_MARKER}=\\d+`), timeoutMs);
    return Number(new RegExp(`${EXIT_MARKER}=(\\d+)`).exec(screen)?.[1]);
  }

  async kill(): Promise<void> {
    await tmux(this.server, ['kill-session', '-t', this.session]).catch(() => undefined);
  }
}

async function tmux(server: string, args: string[]): Promise<string> {
  return (await run('tmux', ['-L', server, ...args], { timeoutMs: 10_000 })).stdout;
}

function shellQuote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}
