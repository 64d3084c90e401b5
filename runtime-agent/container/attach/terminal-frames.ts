/**
 * The byte stream of an attached terminal, between the CLI, the daemon and a container's shim, and of an
 * `exec -i` without a terminal: frames of a one-byte type, a four-byte big-endian length and the payload.
 * Towards the container: `data` (typed input or stdin), `resize` and `eof` (stdin is over); back: `data` (the
 * terminal's output or stdout), `stderr` (only without a terminal) and, last, `exit` with the process's exit
 * code. Framing keeps a resize, the end of input or the exit code apart from the bytes themselves.
 */

export interface TerminalSize {
  columns: number;
  rows: number;
}

export type TerminalFrame =
  | { type: 'data'; data: Buffer }
  | { type: 'stderr'; data: Buffer }
  | { type: 'resize'; size: TerminalSize }
  | { type: 'eof' }
  | { type: 'exit'; exitCode: number };

const TYPE_CODES = { data: 1, resize: 2, exit: 3, stderr: 4, eof: 5 } as const;
const HEADER_BYTES = 5;
/** Far above what one read of a terminal yields; a larger length means the peer is not speaking this protocol. */
const MAX_PAYLOAD_BYTES = 1024 * 1024;
/** What a terminal's size may be (TIOCSWINSZ takes 16-bit values; 0 would mean "unknown"). */
const MAX_DIMENSION = 0xffff;

export class TerminalProtocolError extends Error {}

export function encodeFrame(frame: TerminalFrame): Buffer {
  const payload = framePayload(frame);
  const header = Buffer.alloc(HEADER_BYTES);
  header.writeUInt8(TYPE_CODES[frame.type], 0);
  header.writeUInt32BE(payload.length, 1);
  return Buffer.concat([header, payload]);
}

function framePayload(frame: TerminalFrame): Buffer {
  switch (frame.type) {
    case 'data':
    case 'stderr':
      return frame.data;
    case 'eof':
      return Buffer.alloc(0);
    case 'resize': {
      const payload = Buffer.alloc(4);
      payload.writeUInt16BE(frame.size.columns, 0);
      payload.writeUInt16BE(frame.size.rows, 2);
      return payload;
    }
    case 'exit': {
      const payload = Buffer.alloc(4);
      payload.writeInt32BE(frame.exitCode, 0);
      return payload;
    }
  }
}

/** A usable terminal size from untrusted numbers, or undefined. */
export function terminalSize(columns: unknown, rows: unknown): TerminalSize | undefined {
  const valid = (value: unknown): value is number => Number.isInteger(value) && (value as number) > 0 && (value as number) <= MAX_DIMENSION;
  return valid(columns) && valid(rows) ? { columns, rows } : undefined;
}

/** Cuts a byte stream into frames, whatever the chunking; throws TerminalProtocolError on a malformed one. */
export class FrameDecoder {
  private pending: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): TerminalFrame[] {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const frames: TerminalFrame[] = [];
    while (this.pending.length >= HEADER_BYTES) {
      const length = this.pending.readUInt32BE(1);
      if (length > MAX_PAYLOAD_BYTES) throw new TerminalProtocolError(`terminal frame of ${length} bytes is over the limit`);
      if (this.pending.length < HEADER_BYTES + length) break;
      frames.push(decodeFrame(this.pending.readUInt8(0), this.pending.subarray(HEADER_BYTES, HEADER_BYTES + length)));
      this.pending = this.pending.subarray(HEADER_BYTES + length);
    }
    return frames;
  }
}

function decodeFrame(code: number, payload: Buffer): TerminalFrame {
  switch (code) {
    case TYPE_CODES.data:
      return { type: 'data', data: Buffer.from(payload) };
    case TYPE_CODES.stderr:
      return { type: 'stderr', data: Buffer.from(payload) };
    case TYPE_CODES.eof:
      if (payload.length !== 0) throw new TerminalProtocolError('malformed end-of-input frame');
      return { type: 'eof' };
    case TYPE_CODES.resize: {
      const size = payload.length === 4 ? terminalSize(payload.readUInt16BE(0), payload.readUInt16BE(2)) : undefined;
      if (!size) throw new TerminalProtocolError('malformed terminal resize frame');
      return { type: 'resize', size };
    }
    case TYPE_CODES.exit:
      if (payload.length !== 4) throw new TerminalProtocolError('malformed terminal exit frame');
      return { type: 'exit', exitCode: payload.readInt32BE(0) };
    default:
      throw new TerminalProtocolError(`unknown terminal frame type ${code}`);
  }
}
