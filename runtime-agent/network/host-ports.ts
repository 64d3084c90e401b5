import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import type { PortMapping } from '../container/container-spec.js';

/**
 * Binds `hostIp:port` (port 0: one the kernel picks) for a moment and lets it go. A published port is a
 * DNAT rule, not a socket, so nothing on the host would otherwise notice that a service of its own already
 * listens there (its clients would silently reach the container instead), nor that the address is not one
 * of the host's. Returns the port.
 */
export async function probeHostPort(hostIp: string, port: number, protocol: PortMapping['protocol']): Promise<number> {
  try {
    return protocol === 'tcp' ? await probeTcp(hostIp, port) : await probeUdp(hostIp, port);
  } catch (error) {
    throw new Error(`host port ${hostIp}:${port}/${protocol} cannot be published: ${(error as Error).message}`, { cause: error });
  }
}

function probeTcp(host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen({ host, port, exclusive: true }, () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : port));
    });
  });
}

function probeUdp(address: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = createSocket('udp4');
    socket.once('error', reject);
    socket.bind({ address, port, exclusive: true }, () => {
      const bound = socket.address().port;
      socket.close(() => resolve(bound));
    });
  });
}
