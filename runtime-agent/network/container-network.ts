import path from 'node:path';
import type { Logger } from '../../platform/logger.js';
import type { NetworkMode, PortMapping } from '../container/container-spec.js';
import { AttachmentRecords } from './attachment-records.js';
import { BridgeFirewall } from './bridge-firewall.js';
import { probeHostPort } from './host-ports.js';
import { containerAddresses, formatSubnet, gatewayOf, parseAddress, parseSubnet, type Ipv4Subnet } from './ipv4.js';
import {
  createNamespace,
  NETNS_DIRECTORY,
  overlappingRoutes,
  plugIntoBridge,
  removeBridge,
  removeLink,
  removeNamespace,
  setUpBridge,
} from './links.js';
import { Reservations } from './reservations.js';

export interface NetworkConfig {
  /** At most 15 characters (a Linux interface name). */
  bridgeName: string;
  /** IPv4 CIDR; the bridge takes the first address, containers the following ones. */
  subnet: string;
  /** Where attachments and address and port claims are kept, e.g. `<dataDir>/network`. */
  stateDir: string;
}

export const DEFAULT_BRIDGE_NAME = 'berth0';
/** Next to podman's default 10.88.0.0/16 (and below the 10.89.x networks it creates), not on it: both may run on one host. */
export const DEFAULT_SUBNET = '10.87.0.0/16';

export interface NetworkAttachment {
  mode: NetworkMode;
  /**
   * A bind-mounted network namespace for the OCI config's `linux.namespaces[network].path`: undefined for
   * 'host' (the container shares the host's) and 'none' (runc makes the container one with only `lo`).
   */
  netnsPath: string | undefined;
  ipAddress: string | undefined;
  gateway: string | undefined;
  /** As requested, with host ports 0 replaced by the ports picked. Empty for 'host' and 'none'. */
  ports: PortMapping[];
}

/** Container ids as the agent makes them (docker's 64 hex digits); names on the host derive from the first 12. */
const CONTAINER_ID = /^[0-9a-f]{12,64}$/;
const INTERFACE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/;
const PORT_PICK_ATTEMPTS = 20;

/**
 * Container networking on one host: a bridge with a managed subnet, a network namespace per container
 * plugged in with a veth pair, outbound NAT and published ports through iptables. See the README's
 * "Networking" section for everything it changes on the host.
 */
export class ContainerNetwork {
  private readonly subnet: Ipv4Subnet;
  private readonly firewall: BridgeFirewall;
  private readonly records: AttachmentRecords;
  private readonly addresses: Reservations;
  private readonly hostPorts: Reservations;
  private initialized: Promise<void> | undefined;

  constructor(
    private readonly config: NetworkConfig,
    private readonly logger: Logger,
  ) {
    if (!INTERFACE_NAME.test(config.bridgeName))
      throw new Error(`not a valid bridge name (at most 15 letters, digits, '_', '.', '-'): ${config.bridgeName}`);
    this.subnet = parseSubnet(config.subnet);
    this.firewall = new BridgeFirewall(config.bridgeName, this.subnet);
    this.records = new AttachmentRecords(path.join(config.stateDir, 'attachments'));
    this.addresses = new Reservations(path.join(config.stateDir, 'addresses'));
    this.hostPorts = new Reservations(path.join(config.stateDir, 'host-ports'));
  }

  /**
   * Creates the bridge, enables forwarding and installs the iptables rules, keeping whatever is already in
   * place. Runs once per instance (again after a failure); attach calls it for the first bridge container.
   */
  init(): Promise<void> {
    this.initialized ??= this.setUp().catch((error: unknown) => {
      this.initialized = undefined;
      throw error;
    });
    return this.initialized;
  }

  async attach(containerId: string, mode: NetworkMode, ports: readonly PortMapping[]): Promise<NetworkAttachment> {
    checkContainerId(containerId);
    if (await this.records.read(containerId)) throw new Error(`container ${containerId} is already attached to the network`);
    try {
      if (mode === 'host') return await this.attachToHost(containerId, ports);
      if (mode === 'none') return await this.attachIsolated(containerId);
      return await this.attachToBridge(containerId, ports);
    } catch (error) {
      await this.detach(containerId).catch((cleanupError: unknown) =>
        this.logger.error({ containerId, err: cleanupError }, 'could not undo a failed network attach'),
      );
      throw error;
    }
  }

  /** What attach returned for the container, from the state directory (also after an agent restart). */
  async attachment(containerId: string): Promise<NetworkAttachment | undefined> {
    const stored = await this.records.read(containerId);
    return stored && { netnsPath: undefined, ipAddress: undefined, gateway: undefined, ...stored };
  }

  /**
   * Hands the published ports of `fromId` to `toId`, a container on the bridge started without them (a
   * start-first update): `toId`'s rules are added before `fromId`'s are removed, so a new connection always
   * finds one, and established connections stay with `fromId` until it stops. When `fromId` holds none (it
   * is gone), `requested` are claimed for `toId` as at an attach. Returns `toId`'s published ports.
   */
  async movePorts(fromId: string | undefined, toId: string, requested: readonly PortMapping[]): Promise<PortMapping[]> {
    checkContainerId(toId);
    const to = await this.records.read(toId);
    if (to?.mode !== 'bridge' || to.ipAddress === undefined) throw new Error(`container ${toId} is not attached to the bridge`);
    if (fromId !== undefined) checkContainerId(fromId);
    const from = fromId === undefined ? undefined : await this.records.read(fromId);
    const moving = from && from.ports.length > 0 ? from.ports : await this.claimHostPorts(toId, requested);
    await this.firewall.publish(toId, to.ipAddress, moving);
    if (from && fromId !== undefined) {
      await this.firewall.unpublish(fromId);
      await this.hostPorts.transfer(fromId, toId);
      await this.records.write(fromId, { ...from, ports: [] });
    }
    const ports = [...to.ports, ...moving];
    await this.records.write(toId, { ...to, ports });
    return ports;
  }

  /**
   * Removes the container's port rules, veth pair, namespace and claims, whichever its recorded attachment
   * has: each removal spawns iptables or ip, and a container's exit and its removal both come here. The
   * record is written before anything is made, so without one there is nothing on the host to remove.
   */
  async detach(containerId: string): Promise<void> {
    checkContainerId(containerId);
    const stored = await this.records.read(containerId);
    if (stored?.mode === 'bridge') {
      await this.firewall.unpublish(containerId);
      await removeLink(hostLinkOf(containerId));
    }
    // Bridge attachments, and 'none' ones made by agents before 'none' left the namespace to runc.
    if (stored?.netnsPath !== undefined) await removeNamespace(namespaceOf(containerId));
    // Released last, so that no new container gets the address while the old one's link still holds it.
    await this.addresses.releaseAllOf(containerId);
    await this.hostPorts.releaseAllOf(containerId);
    await this.records.remove(containerId);
  }

  /** At daemon start: removes what attachments of containers not in `live` left behind (an agent that crashed). */
  async removeLeftovers(live: ReadonlySet<string>): Promise<void> {
    const known = new Set([
      ...(await this.records.containerIds()),
      ...(await this.addresses.owners()),
      ...(await this.hostPorts.owners()),
      ...(await this.firewall.publishers()),
    ]);
    for (const containerId of known) {
      if (live.has(containerId)) continue;
      this.logger.warn({ containerId }, 'removing the network attachment of a container that is gone');
      await this.detach(containerId);
    }
  }

  /** Detaches every container and removes the bridge and its iptables rules (tests, uninstall). */
  async destroy(): Promise<void> {
    await this.removeLeftovers(new Set());
    await this.firewall.uninstall();
    await removeBridge(this.config.bridgeName);
    this.initialized = undefined;
  }

  private async setUp(): Promise<void> {
    const conflicts = await overlappingRoutes(this.subnet, this.config.bridgeName);
    if (conflicts.length > 0) {
      throw new Error(
        `subnet ${formatSubnet(this.subnet)} overlaps routes of the host (${conflicts.join(', ')}): configure another subnet`,
      );
    }
    await setUpBridge(this.config.bridgeName, this.subnet);
    await this.firewall.install();
    this.logger.info({ bridge: this.config.bridgeName, subnet: formatSubnet(this.subnet) }, 'container network ready');
  }

  /** Nothing to create: the container stays in the host's namespace. Kept on record for attachment(). */
  private async attachToHost(containerId: string, ports: readonly PortMapping[]): Promise<NetworkAttachment> {
    if (ports.length > 0) this.logger.warn({ containerId }, 'published ports are ignored with the host network');
    const attachment: NetworkAttachment = { mode: 'host', netnsPath: undefined, ipAddress: undefined, gateway: undefined, ports: [] };
    await this.records.write(containerId, attachment);
    return attachment;
  }

  /**
   * Nothing to create either: without a namespace to join, runc makes the container one of its own with
   * only `lo`, up, and it goes with the container (no `ip netns` commands at the start and the removal).
   */
  private async attachIsolated(containerId: string): Promise<NetworkAttachment> {
    const attachment: NetworkAttachment = { mode: 'none', netnsPath: undefined, ipAddress: undefined, gateway: undefined, ports: [] };
    await this.records.write(containerId, attachment);
    return attachment;
  }

  private async attachToBridge(containerId: string, requested: readonly PortMapping[]): Promise<NetworkAttachment> {
    await this.init();
    const ipAddress = await this.claimAddress(containerId);
    const ports = await this.claimHostPorts(containerId, requested);
    const attachment: NetworkAttachment = {
      mode: 'bridge',
      netnsPath: namespacePathOf(containerId),
      ipAddress,
      gateway: gatewayOf(this.subnet),
      ports,
    };
    await this.records.write(containerId, attachment);
    const namespace = namespaceOf(containerId);
    await createNamespace(namespace);
    await plugIntoBridge({
      bridge: this.config.bridgeName,
      subnet: this.subnet,
      hostLink: hostLinkOf(containerId),
      namespace,
      address: ipAddress,
    });
    await this.firewall.publish(containerId, ipAddress, ports);
    this.logger.debug({ containerId, ipAddress, ports }, 'container attached to the bridge');
    return attachment;
  }

  /** The lowest free address; a claim lost to a concurrent attach moves on to the next one. */
  private async claimAddress(containerId: string): Promise<string> {
    const taken = await this.addresses.names();
    for (const address of containerAddresses(this.subnet)) {
      if (!taken.has(address) && (await this.addresses.claim(address, containerId))) return address;
    }
    throw new Error(`no free address left in ${formatSubnet(this.subnet)}`);
  }

  /**
   * Host ports are claimed per protocol and port, whatever the host address: a port published on 0.0.0.0
   * would shadow the same port on one address, so the two cannot go to different containers.
   */
  private async claimHostPorts(containerId: string, requested: readonly PortMapping[]): Promise<PortMapping[]> {
    const claimed: PortMapping[] = [];
    for (const mapping of requested) {
      checkPortMapping(mapping);
      const hostPort =
        mapping.hostPort === 0 ? await this.pickHostPort(containerId, mapping) : await this.claimHostPort(containerId, mapping);
      claimed.push({ ...mapping, hostPort });
    }
    return claimed;
  }

  private async claimHostPort(containerId: string, mapping: PortMapping): Promise<number> {
    if (!(await this.hostPorts.claim(`${mapping.protocol}-${mapping.hostPort}`, containerId))) {
      throw new Error(`host port ${mapping.hostPort}/${mapping.protocol} is already published by another container`);
    }
    return probeHostPort(mapping.hostIp, mapping.hostPort, mapping.protocol);
  }

  private async pickHostPort(containerId: string, mapping: PortMapping): Promise<number> {
    for (let attempt = 0; attempt < PORT_PICK_ATTEMPTS; attempt++) {
      const port = await probeHostPort(mapping.hostIp, 0, mapping.protocol);
      if (await this.hostPorts.claim(`${mapping.protocol}-${port}`, containerId)) return port;
    }
    throw new Error(`no free host port found for ${mapping.hostIp}/${mapping.protocol} in ${PORT_PICK_ATTEMPTS} attempts`);
  }
}

function checkContainerId(containerId: string): void {
  if (!CONTAINER_ID.test(containerId)) throw new Error(`not a container id (12 to 64 lowercase hex digits): ${containerId}`);
}

function checkPortMapping(mapping: PortMapping): void {
  parseAddress(mapping.hostIp);
  const valid = (port: number, min: number) => Number.isInteger(port) && port >= min && port <= 65535;
  if (!valid(mapping.hostPort, 0) || !valid(mapping.containerPort, 1)) {
    throw new Error(`invalid port mapping ${mapping.hostIp}:${mapping.hostPort}:${mapping.containerPort}/${mapping.protocol}`);
  }
}

function shortId(containerId: string): string {
  return containerId.slice(0, 12);
}

function namespaceOf(containerId: string): string {
  return `berth-${shortId(containerId)}`;
}

function namespacePathOf(containerId: string): string {
  return path.join(NETNS_DIRECTORY, namespaceOf(containerId));
}

/** 15 characters, the longest an interface name can be. */
function hostLinkOf(containerId: string): string {
  return `vb-${shortId(containerId)}`;
}
