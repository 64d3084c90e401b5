import type { Duplex } from 'node:stream';
import type { PtyProcess } from '../../runtime/pty-process.js';
import { encodeFrame, FrameDecoder } from './terminal-frames.js';

/** Output a client may leave unread before it is dropped. */
const MAX_UNREAD_BYTES = 4 * 1024 * 1024;

export interface TerminalHubOptions {
  /** Whether clients may type (`-i`); without it their data frames are dropped, as docker drops stdin. */
  acceptInput: boolean;
  /**
   * Output kept until the first client attaches, so the first `attach` to a `run -dit` container sees the
   * shell's prompt; later clients see what comes after they attach, as with docker.
   */
  backlogBytes: number;
}

/**
 * One terminal and the clients attached to it (terminal-frames.ts on each connection): their input goes to
 * the terminal, its output goes to every one of them, any of them may resize it, and when the process ends
 * each gets its exit code and is let go. A client that breaks the protocol or goes away is dropped alone.
 */
export class TerminalHub {
  private readonly clients = new Set<Duplex>();
  private backlog: Buffer[] | undefined = [];
  private backlogSize = 0;
  private exitCode: number | undefined;

  constructor(
    private readonly terminal: PtyProcess,
    private readonly options: TerminalHubOptions,
  ) {
    terminal.onOutput((data) => this.broadcast(data));
  }

  add(client: Duplex): void {
    if (this.exitCode !== undefined) {
      client.end(encodeFrame({ type: 'exit', exitCode: this.exitCode }));
      return;
    }
    this.clients.add(client);
    const drop = () => {
      this.clients.delete(client);
      client.destroy();
    };
    client.on('error', drop);
    client.on('close', drop);
    if (this.backlog) {
      for (const data of this.backlog) client.write(encodeFrame({ type: 'data', data }));
      this.backlog = undefined;
    }
    const decoder = new FrameDecoder();
    client.on('data', (chunk: Buffer) => {
      try {
        for (const frame of decoder.push(chunk)) {
          if (frame.type === 'resize') this.terminal.resize(frame.size);
          else if (frame.type === 'data' && this.options.acceptInput) this.terminal.write(frame.data);
        }
      } catch {
        drop();
      }
    });
  }

  /** Tells every client how the process ended and closes their connections. */
  end(exitCode: number): void {
    this.exitCode = exitCode;
    for (const client of this.clients) client.end(encodeFrame({ type: 'exit', exitCode }));
    this.clients.clear();
  }

  private broadcast(data: Buffer): void {
    if (this.backlog) {
      this.keepInBacklog(data);
      return;
    }
    const frame = encodeFrame({ type: 'data', data });
    for (const client of this.clients) {
      // A client that stopped reading is let go rather than have its backlog grow without end.
      if (client.writableLength > MAX_UNREAD_BYTES) client.destroy();
      else client.write(frame);
    }
  }

  /** The newest output up to the limit: a screen redraws itself, the oldest lines matter least. */
  private keepInBacklog(data: Buffer): void {
    const backlog = this.backlog ?? [];
    backlog.push(data);
    this.backlogSize += data.length;
    while (this.backlogSize > this.options.backlogBytes && backlog.length > 1) this.backlogSize -= backlog.shift()?.length ?? 0;
  }
}
