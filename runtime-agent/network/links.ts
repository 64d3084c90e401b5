import { writeFile } from 'node:fs/promises';
import { isAlreadyGone, isAlreadyThere, runHostCommand } from '../support/host-command.js';
import { gatewayOf, macForAddress, overlaps, parseSubnet, type Ipv4Subnet } from './ipv4.js';

/** The ip(8) side of container networking: the bridge, network namespaces and veth pairs. */

export const NETNS_DIRECTORY = '/run/netns';

/** The bridge up with the gateway address, and the two kernel switches container traffic needs. */
export async function setUpBridge(bridge: string, subnet: Ipv4Subnet): Promise<void> {
  const gateway = gatewayOf(subnet);
  await runHostCommand('ip', ['link', 'add', bridge, 'address', macForAddress(gateway), 'type', 'bridge']).catch(unlessAlreadyThere);
  await runHostCommand('ip', ['-batch', '-'], `addr replace ${gateway}/${subnet.prefixLength} dev ${bridge}\nlink set ${bridge} up\n`);
  // Host-wide, and left on when the bridge goes: other engines on the host (docker) rely on it as well.
  await writeSysctl('net/ipv4/ip_forward', '1');
  // Only on the bridge: lets DNATed connections from 127.0.0.1 leave through it (they are masqueraded there).
  await writeSysctl(`net/ipv4/conf/${bridge}/route_localnet`, '1');
}

export async function removeBridge(bridge: string): Promise<void> {
  await runHostCommand('ip', ['link', 'del', bridge]).catch(unlessAlreadyGone);
}

/** Routes of other interfaces that `subnet` overlaps: containers there could not reach those networks. */
export async function overlappingRoutes(subnet: Ipv4Subnet, bridge: string): Promise<string[]> {
  const routes = JSON.parse(await runHostCommand('ip', ['-json', '-4', 'route', 'show'])) as { dst: string; dev?: string }[];
  return routes
    .filter((route) => route.dst !== 'default' && route.dev !== bridge)
    .filter((route) => overlaps(subnet, parseSubnet(route.dst.includes('/') ? route.dst : `${route.dst}/32`)))
    .map((route) => `${route.dst} on ${route.dev ?? '?'}`);
}

export async function createNamespace(name: string): Promise<void> {
  await runHostCommand('ip', ['netns', 'add', name]);
  await runHostCommand('ip', ['-netns', name, 'link', 'set', 'lo', 'up']);
}

export async function removeNamespace(name: string): Promise<void> {
  await runHostCommand('ip', ['netns', 'del', name]).catch(unlessAlreadyGone);
}

export interface BridgePort {
  bridge: string;
  subnet: Ipv4Subnet;
  /** The host end's name; the other end becomes the namespace's eth0. */
  hostLink: string;
  namespace: string;
  address: string;
}

/**
 * A veth pair: one end on the bridge in hairpin mode (a container reaching its own published port through
 * a host address gets its packets back on the port they came from), the other the namespace's eth0 with
 * the address and a default route through the gateway.
 */
export async function plugIntoBridge(port: BridgePort): Promise<void> {
  const { bridge, hostLink, namespace, address, subnet } = port;
  await runHostCommand(
    'ip',
    ['-batch', '-'],
    [
      `link add ${hostLink} type veth peer name eth0 address ${macForAddress(address)} netns ${namespace}`,
      `link set ${hostLink} master ${bridge}`,
      `link set ${hostLink} type bridge_slave hairpin on`,
      `link set ${hostLink} up`,
    ].join('\n'),
  );
  await runHostCommand(
    'ip',
    ['-netns', namespace, '-batch', '-'],
    [`addr add ${address}/${subnet.prefixLength} dev eth0`, 'link set eth0 up', `route add default via ${gatewayOf(subnet)}`].join('\n'),
  );
}

/** Removing the host end of a veth pair removes both ends. */
export async function removeLink(name: string): Promise<void> {
  await runHostCommand('ip', ['link', 'del', name]).catch(unlessAlreadyGone);
}

async function writeSysctl(key: string, value: string): Promise<void> {
  await writeFile(`/proc/sys/${key}`, value).catch((error: Error) => {
    throw new Error(`cannot set sysctl ${key.replaceAll('/', '.')}=${value}: ${error.message}`);
  });
}

function unlessAlreadyThere(error: unknown): void {
  if (!isAlreadyThere(error)) throw error;
}

function unlessAlreadyGone(error: unknown): void {
  if (!isAlreadyGone(error)) throw error;
}
