import { isIPv4 } from 'node:net';

/** IPv4 addresses as unsigned 32-bit numbers, for subnet arithmetic. */

export interface Ipv4Subnet {
  network: number;
  prefixLength: number;
}

export function parseAddress(address: string): number {
  if (!isIPv4(address)) throw new Error(`not an IPv4 address: ${address}`);
  return address.split('.').reduce((value, octet) => value * 256 + Number(octet), 0);
}

export function formatAddress(value: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(value / 2 ** shift) % 256).join('.');
}

/**
 * `10.88.0.0/16`. Host bits are cleared, so `10.88.0.1/16` names the same subnet. At most /30: the network
 * and broadcast addresses and the gateway leave nothing for containers in a smaller one.
 */
export function parseSubnet(cidr: string): Ipv4Subnet {
  const [address = '', prefix = '', ...rest] = cidr.split('/');
  const prefixLength = Number(prefix);
  if (rest.length > 0 || !/^\d+$/.test(prefix) || prefixLength > 30) {
    throw new Error(`not an IPv4 subnet of at most /30 in CIDR form: ${cidr}`);
  }
  const size = 2 ** (32 - prefixLength);
  return { network: Math.floor(parseAddress(address) / size) * size, prefixLength };
}

export function formatSubnet(subnet: Ipv4Subnet): string {
  return `${formatAddress(subnet.network)}/${subnet.prefixLength}`;
}

function broadcastOf(subnet: Ipv4Subnet): number {
  return subnet.network + 2 ** (32 - subnet.prefixLength) - 1;
}

/** The bridge's own address, as docker does: the first one of the subnet. */
export function gatewayOf(subnet: Ipv4Subnet): string {
  return formatAddress(subnet.network + 1);
}

/** The addresses containers may get, in order: after the gateway, before the broadcast address. */
export function* containerAddresses(subnet: Ipv4Subnet): Generator<string> {
  for (let value = subnet.network + 2; value < broadcastOf(subnet); value++) yield formatAddress(value);
}

export function overlaps(a: Ipv4Subnet, b: Ipv4Subnet): boolean {
  return a.network <= broadcastOf(b) && b.network <= broadcastOf(a);
}

/**
 * A locally administered MAC derived from the address (docker's 02:42 scheme): an address handed to a new
 * container keeps its MAC, so neighbours' ARP caches stay right, and a bridge with a fixed MAC does not take
 * over the lowest MAC of its ports, which would change the gateway's MAC whenever a container comes or goes.
 */
export function macForAddress(address: string): string {
  const octets = address.split('.').map((octet) => Number(octet).toString(16).padStart(2, '0'));
  return ['02', '42', ...octets].join(':');
}
