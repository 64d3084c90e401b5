import type { Duplex } from 'node:stream';
import { encodeFrame, FrameDecoder, type TerminalFrame, type TerminalSize } from '../container/attach/terminal-frames.js';

/**
 * The CLI's end of an attached terminal: this terminal in raw mode (every key goes to the container's
 * terminal, which does the echo, line editing and job control), its size sent at the start and on each
 * resize, the container's output printed as it comes, and docker's detach keys (ctrl-p ctrl-q by default)
 * watched for in what is typed.
 */

export const DEFAULT_DETACH_KEYS = 'ctrl-p,ctrl-q';

export type SessionEnd = { kind: 'exited'; exitCode: number } | { kind: 'detached' } | { kind: 'lost' };

export interface TerminalSessionOptions {
  /** `-i`: what is typed goes to the container; without it this terminal is left alone. */
  interactive: boolean;
  detachKeys: Buffer;
  input: NodeJS.ReadStream;
  output: NodeJS.WriteStream;
}

/** Runs the session until the process exits, the user detaches or the connection is lost; restores this terminal. */
export function runTerminalSession(connection: Duplex, options: TerminalSessionOptions): Promise<SessionEnd> {
  const { input, output } = options;
  const send = (frame: TerminalFrame) => {
    if (!connection.destroyed) connection.write(encodeFrame(frame));
  };
  const sendSize = () => {
    const size = terminalSizeOf(output);
    if (size) send({ type: 'resize', size });
  };
  const raw = options.interactive && input.isTTY;
  return new Promise<SessionEnd>((resolve) => {
    let exitCode: number | undefined;
    const detacher = new DetachKeyWatcher(options.detachKeys);
    const finish = (end: SessionEnd) => {
      output.off('resize', sendSize);
      input.off('data', onInput);
      input.off('end', onInputEnd);
      if (raw) input.setRawMode(false);
      input.pause();
      connection.destroy();
      resolve(end);
    };
    const onInput = (chunk: Buffer) => {
      const { forward, detached } = detacher.feed(chunk);
      if (forward.length > 0) send({ type: 'data', data: forward });
      if (detached) finish({ kind: 'detached' });
    };
    // A terminal's input does not end; piped input that does leaves the session to the process.
    const onInputEnd = () => input.off('data', onInput);
    const decoder = new FrameDecoder();
    connection.on('data', (chunk: Buffer) => {
      for (const frame of decoder.push(chunk)) {
        if (frame.type === 'data') output.write(frame.data);
        else if (frame.type === 'exit') exitCode = frame.exitCode;
      }
    });
    connection.once('close', () => finish(exitCode === undefined ? { kind: 'lost' } : { kind: 'exited', exitCode }));
    connection.on('error', () => connection.destroy());
    if (raw) input.setRawMode(true);
    output.on('resize', sendSize);
    sendSize();
    if (options.interactive) {
      input.on('data', onInput);
      input.once('end', onInputEnd);
      input.resume();
    }
  });
}

/** This side's terminal size, if it is a terminal. */
export function terminalSizeOf(output: NodeJS.WriteStream): TerminalSize | undefined {
  return output.isTTY ? { columns: output.columns, rows: output.rows } : undefined;
}

const CONTROL_KEYS: Record<string, number> = { '@': 0, '[': 27, '\\': 28, ']': 29, '^': 30, _: 31 };

/** docker's `--detach-keys`: comma-separated keys, each a single character or `ctrl-<a-z @ [ \ ] ^ _>`. */
export function parseDetachKeys(text: string): Buffer {
  const invalid = () => new Error(`Invalid detach keys (${text}) provided: use keys such as ctrl-p,ctrl-q, ctrl-a or a single character`);
  const bytes = text.split(',').map((key) => {
    if (key.length === 1) return key.charCodeAt(0);
    const control = /^ctrl-(.)$/i.exec(key)?.[1];
    if (control === undefined) throw invalid();
    const letter = control.toLowerCase();
    if (letter >= 'a' && letter <= 'z') return letter.charCodeAt(0) - 96;
    const code = CONTROL_KEYS[control];
    if (code === undefined) throw invalid();
    return code;
  });
  if (bytes.some((byte) => byte > 0x7f)) throw invalid();
  return Buffer.from(bytes);
}

/**
 * Finds the detach sequence in typed input, as docker's escape proxy does: keys that could begin it are held
 * back; the whole sequence detaches (and is never sent), anything else releases them with the key after.
 */
export class DetachKeyWatcher {
  private matched = 0;

  constructor(private readonly keys: Buffer) {}

  feed(chunk: Buffer): { forward: Buffer; detached: boolean } {
    const forward: number[] = [];
    for (const byte of chunk) {
      if (byte === this.keys[this.matched]) {
        this.matched++;
        if (this.matched === this.keys.length) return { forward: Buffer.from(forward), detached: true };
        continue;
      }
      forward.push(...this.keys.subarray(0, this.matched));
      this.matched = byte === this.keys[0] ? 1 : 0;
      if (this.matched === 0) forward.push(byte);
    }
    return { forward: Buffer.from(forward), detached: false };
  }
}
