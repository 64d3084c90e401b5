import type { TerminalSize } from '../container/attach/terminal-frames.js';

/**
 * A program run on a new pseudo-terminal (node-pty: forkpty plus TIOCSWINSZ, the one dependency that does
 * this from Node). runc is run this way for a container or exec with a terminal: runc then makes the
 * container's own terminal, puts this one in raw mode, copies between the two and, on SIGWINCH (sent by the
 * kernel when this terminal is resized), gives the container's terminal this one's size. No file
 * descriptor ever has to cross a socket.
 */
export interface PtyProcess {
  write(data: Buffer): void;
  resize(size: TerminalSize): void;
  onOutput(listener: (data: Buffer) => void): void;
  /** Stops reading the terminal (its program blocks once the terminal's buffer is full) until resume(). */
  pause(): void;
  resume(): void;
  /** The program's exit code (128 + signal when a signal ended it), once its output has been read. */
  exited: Promise<number>;
}

export const DEFAULT_TERMINAL_SIZE: TerminalSize = { columns: 80, rows: 24 };

export async function spawnInPty(file: string, args: string[], options: { cwd: string; size: TerminalSize }): Promise<PtyProcess> {
  // Loaded when a terminal is asked for: a shim or CLI without one does not pay for the native module.
  const { spawn } = await import('node-pty');
  const pty = spawn(file, args, {
    name: 'xterm',
    cols: options.size.columns,
    rows: options.size.rows,
    cwd: options.cwd,
    env: process.env as Record<string, string>,
    // Bytes as they are: output may split a UTF-8 sequence, and the log and the client want it unchanged.
    encoding: null,
  });
  const exited = new Promise<number>((resolve) => {
    pty.onExit(({ exitCode, signal }) => resolve(signal ? 128 + signal : exitCode));
  });
  return {
    write: (data) => pty.write(data),
    resize: (size) => {
      try {
        pty.resize(size.columns, size.rows);
      } catch {
        // The terminal is already gone (the process exited): there is nothing left to resize.
      }
    },
    pause: () => pty.pause(),
    resume: () => pty.resume(),
    onOutput: (listener) => {
      // With `encoding: null` node-pty hands Buffers; its typings only know strings.
      pty.onData((data) => listener(Buffer.isBuffer(data) ? data : Buffer.from(data)));
    },
    exited,
  };
}
