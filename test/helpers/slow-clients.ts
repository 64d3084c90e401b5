import { readdir } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';

/** A connection the test holds open, with whatever the server answered on it so far. */
export interface HeldConnection {
  socket: Socket;
  answer: string;
  closed: boolean;
}

/**
 * Opens `count` connections to 127.0.0.1:`port`, from the loopback addresses given in turn (so per-address
 * caps can be stayed under), and sends `head` (a request line and headers) on each. Resolves once every
 * connection is established.
 */
export async function openConnections(port: number, count: number, sources: string[], head: string): Promise<HeldConnection[]> {
  const held: HeldConnection[] = [];
  const connected: Promise<void>[] = [];
  for (let index = 0; index < count; index++) {
    const socket = connect({ host: '127.0.0.1', port, localAddress: sources[index % sources.length] });
    const connection: HeldConnection = { socket, answer: '', closed: false };
    socket.setEncoding('utf8');
    socket.on('data', (text: string) => (connection.answer += text));
    socket.on('error', () => undefined);
    socket.on('close', () => (connection.closed = true));
    connected.push(new Promise((resolve) => socket.once('connect', () => resolve()).once('close', () => resolve())));
    socket.write(head);
    held.push(connection);
  }
  await Promise.all(connected);
  return held;
}

/** Sends one byte on every open connection each `everyMs` until stopped: bodies that never end. */
export function trickle(connections: HeldConnection[], everyMs: number): () => void {
  const timer = setInterval(() => {
    for (const connection of connections) if (!connection.closed) connection.socket.write('a');
  }, everyMs);
  return () => clearInterval(timer);
}

export function closeAll(connections: HeldConnection[]): void {
  for (const connection of connections) connection.socket.destroy();
}

/** `count` loopback source addresses, 127.0.0.<first>... */
export function loopbackSources(count: number, first = 2): string[] {
  return Array.from({ length: count }, (_unused, index) => `127.0.0.${first + index}`);
}

/** How many file descriptors the process has open. */
export async function openFds(pid: number): Promise<number> {
  return (await readdir(`/proc/${pid}/fd`)).length;
}
