import type { Duplex } from 'node:stream';
import { encodeFrame, FrameDecoder, type TerminalFrame } from '../container/attach/terminal-frames.js';
import type { SessionEnd } from './terminal.js';

export interface PipedSessionStreams {
  input: NodeJS.ReadableStream;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

/**
 * The CLI's end of `exec -i` without a terminal (container/attach/piped-exec.ts on the daemon): what it reads
 * goes to the process's stdin and the end of it closes that stdin; the process's stdout and stderr are
 * written to this side's; the session ends with the exit code, or as lost if the connection closes before it.
 */
export function runPipedSession(connection: Duplex, streams: PipedSessionStreams): Promise<SessionEnd> {
  const { input } = streams;
  const send = (frame: TerminalFrame) => {
    if (!connection.destroyed) connection.write(encodeFrame(frame));
  };
  const onInput = (chunk: Buffer | string) => send({ type: 'data', data: Buffer.from(chunk) });
  const onInputEnd = () => send({ type: 'eof' });
  return new Promise<SessionEnd>((resolve) => {
    let exitCode: number | undefined;
    const decoder = new FrameDecoder();
    const write = (output: NodeJS.WritableStream, data: Buffer) => {
      if (output.write(data)) return;
      connection.pause();
      output.once('drain', () => connection.resume());
    };
    connection.on('data', (chunk: Buffer) => {
      for (const frame of decoder.push(chunk)) {
        if (frame.type === 'data') write(streams.stdout, frame.data);
        else if (frame.type === 'stderr') write(streams.stderr, frame.data);
        else if (frame.type === 'exit') exitCode = frame.exitCode;
      }
    });
    connection.on('error', () => connection.destroy());
    connection.once('close', () => {
      input.off('data', onInput);
      input.off('end', onInputEnd);
      input.pause();
      resolve(exitCode === undefined ? { kind: 'lost' } : { kind: 'exited', exitCode });
    });
    input.on('data', onInput);
    input.once('end', onInputEnd);
    input.resume();
  });
}
