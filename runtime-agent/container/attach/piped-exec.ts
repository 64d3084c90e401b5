import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import type { Duplex, Readable } from 'node:stream';
import { exitCodeOf } from '../../../platform/process-exit.js';
import { encodeFrame, FrameDecoder } from './terminal-frames.js';

/**
 * `exec -i` without a terminal over one client connection (terminal-frames.ts): the client's `data` frames
 * are the process's stdin and its `eof` closes it (the process reads EOF); stdout and stderr go back as
 * `data` and `stderr` frames, the exit code last. A client that goes away or breaks the protocol closes the
 * stdin as docker's does, and the process runs on to its end. Both directions wait for the slower side.
 */
export async function relayPipedExec(child: ChildProcessWithoutNullStreams, client: Duplex): Promise<void> {
  // The process may exit without reading its stdin; what is still being written then has nowhere to go.
  child.stdin.on('error', () => undefined);
  const closeStdin = () => {
    client.off('data', onData);
    child.stdin.end();
  };
  const decoder = new FrameDecoder();
  const onData = (chunk: Buffer) => {
    try {
      for (const frame of decoder.push(chunk)) {
        if (frame.type === 'data' && !child.stdin.write(frame.data)) {
          client.pause();
          child.stdin.once('drain', () => client.resume());
        } else if (frame.type === 'eof') closeStdin();
      }
    } catch {
      closeStdin();
      client.destroy();
    }
  };
  client.on('data', onData);
  client.once('close', closeStdin);
  const exited = new Promise<number>((resolve) => child.once('close', (code, signal) => resolve(exitCodeOf(code, signal))));
  relayOutput(child.stdout, client, 'data');
  relayOutput(child.stderr, client, 'stderr');
  const exitCode = await exited;
  client.off('close', closeStdin);
  client.end(encodeFrame({ type: 'exit', exitCode }));
}

function relayOutput(output: Readable, client: Duplex, type: 'data' | 'stderr'): void {
  output.on('data', (data: Buffer) => {
    if (client.destroyed) return;
    if (!client.write(encodeFrame({ type, data }))) {
      output.pause();
      client.once('drain', () => output.resume());
    }
  });
}
