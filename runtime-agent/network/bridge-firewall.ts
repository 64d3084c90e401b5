import type { PortMapping } from '../container/container-spec.js';
import { formatSubnet, type Ipv4Subnet } from './ipv4.js';
import { changeTables, readTable, rulesOf, type Table, type TableState } from './netfilter.js';

interface Hook {
  table: Table;
  chain: string;
  rule: string;
}

/**
 * The iptables rules of one bridge, all in chains of its own (BERTH-<bridge>-DNAT, -POST, -FWD) that the
 * built-in chains jump to once: two agents with different bridges never touch each other's rules, and
 * removing a bridge's rules is removing its chains and the jumps.
 *
 * - DNAT (nat PREROUTING and OUTPUT, for local destination addresses): one rule per published port, tagged
 *   `berth:<container id>` in a comment. OUTPUT is what makes a port answer from the host itself.
 * - POST (nat POSTROUTING): outbound masquerade for the subnet; masquerade for connections from 127.0.0.0/8
 *   (a container cannot answer 127.0.0.1, and the kernel only routes such a packet out of the bridge with
 *   route_localnet set on it) and for hairpin connections (a container reaching a published port of its own
 *   or of a neighbour through a host address: its answer must come back through the host to be un-NATed).
 * - FWD (filter FORWARD): accepts what leaves the bridge, replies and published ports coming in, and drops
 *   anything else going into the bridge, whatever the FORWARD policy (dockerd sets it to DROP).
 */
export class BridgeFirewall {
  private readonly dnatChain: string;
  private readonly postChain: string;
  private readonly forwardChain: string;

  constructor(
    private readonly bridge: string,
    private readonly subnet: Ipv4Subnet,
  ) {
    this.dnatChain = `BERTH-${bridge}-DNAT`;
    this.postChain = `BERTH-${bridge}-POST`;
    this.forwardChain = `BERTH-${bridge}-FWD`;
  }

  /** Creates what is missing and rewrites a fixed chain that differs; the port rules of running containers stay. */
  async install(): Promise<void> {
    const [filter, nat] = await Promise.all([readTable('filter'), readTable('nat')]);
    await changeTables({
      filter: [...this.fixedChain(filter, this.forwardChain, this.forwardRules()), ...missingHooks(filter, this.hooks('filter'))],
      nat: [
        ...(nat.chains.has(this.dnatChain) ? [] : [`-N ${this.dnatChain}`]),
        ...this.fixedChain(nat, this.postChain, this.postRules()),
        ...missingHooks(nat, this.hooks('nat')),
      ],
    });
  }

  async uninstall(): Promise<void> {
    const [filter, nat] = await Promise.all([readTable('filter'), readTable('nat')]);
    const removal = (state: TableState, table: Table, chains: string[]) => [
      ...this.hooks(table).flatMap((hook) =>
        state.rules.filter((rule) => rule === `-A ${hook.chain} ${hook.rule}`).map(() => `-D ${hook.chain} ${hook.rule}`),
      ),
      ...chains.filter((chain) => state.chains.has(chain)).flatMap((chain) => [`-F ${chain}`, `-X ${chain}`]),
    ];
    await changeTables({
      filter: removal(filter, 'filter', [this.forwardChain]),
      nat: removal(nat, 'nat', [this.dnatChain, this.postChain]),
    });
  }

  async publish(containerId: string, containerAddress: string, ports: readonly PortMapping[]): Promise<void> {
    await changeTables({
      nat: ports.map((port) => {
        const destination = port.hostIp === '0.0.0.0' ? '' : `-d ${port.hostIp}/32 `;
        return (
          `-A ${this.dnatChain} ${destination}-p ${port.protocol} -m ${port.protocol} --dport ${port.hostPort} ` +
          `-m comment --comment ${tagOf(containerId)} -j DNAT --to-destination ${containerAddress}:${port.containerPort}`
        );
      }),
    });
  }

  async unpublish(containerId: string): Promise<void> {
    const nat = await readTable('nat');
    const tagged = rulesOf(nat, this.dnatChain).filter((rule) => ownerOf(rule) === containerId);
    await changeTables({ nat: tagged.map((rule) => `-D ${this.dnatChain} ${rule}`) });
  }

  /** Containers with published-port rules. */
  async publishers(): Promise<Set<string>> {
    const owners = rulesOf(await readTable('nat'), this.dnatChain).map(ownerOf);
    return new Set(owners.filter((owner) => owner !== undefined));
  }

  /** Replaces the chain's rules when they are not exactly these (an older version, another subnet). */
  private fixedChain(state: TableState, chain: string, rules: string[]): string[] {
    if (!state.chains.has(chain)) return [`-N ${chain}`, ...rules.map((rule) => `-A ${chain} ${rule}`)];
    if (rulesOf(state, chain).join('\n') === rules.join('\n')) return [];
    return [`-F ${chain}`, ...rules.map((rule) => `-A ${chain} ${rule}`)];
  }

  // Rules are written as iptables-save prints them, so that install() recognizes them on the next start.
  private postRules(): string[] {
    const subnet = formatSubnet(this.subnet);
    return [
      `-s ${subnet} ! -o ${this.bridge} -j MASQUERADE`,
      `-s 127.0.0.0/8 -o ${this.bridge} -j MASQUERADE`,
      `-s ${subnet} -o ${this.bridge} -m conntrack --ctstate DNAT -j MASQUERADE`,
    ];
  }

  private forwardRules(): string[] {
    return [
      `-i ${this.bridge} -j ACCEPT`,
      `-o ${this.bridge} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`,
      `-o ${this.bridge} -m conntrack --ctstate DNAT -j ACCEPT`,
      `-o ${this.bridge} -j DROP`,
    ];
  }

  private hooks(table: Table): Hook[] {
    const hooks: Hook[] = [
      { table: 'nat', chain: 'PREROUTING', rule: `-m addrtype --dst-type LOCAL -j ${this.dnatChain}` },
      { table: 'nat', chain: 'OUTPUT', rule: `-m addrtype --dst-type LOCAL -j ${this.dnatChain}` },
      { table: 'nat', chain: 'POSTROUTING', rule: `-j ${this.postChain}` },
      { table: 'filter', chain: 'FORWARD', rule: `-j ${this.forwardChain}` },
    ];
    return hooks.filter((hook) => hook.table === table);
  }
}

/** Jumps go first in the built-in chains: other rules there (docker's among them) never see our traffic first. */
function missingHooks(state: TableState, hooks: Hook[]): string[] {
  return hooks.filter((hook) => !state.rules.includes(`-A ${hook.chain} ${hook.rule}`)).map((hook) => `-I ${hook.chain} ${hook.rule}`);
}

function tagOf(containerId: string): string {
  return `berth:${containerId}`;
}

function ownerOf(rule: string): string | undefined {
  return /--comment "?berth:([0-9a-f]+)"?/.exec(rule)?.[1];
}
