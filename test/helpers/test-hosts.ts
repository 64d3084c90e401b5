import { randomBytes, randomInt } from 'node:crypto';
import { run } from './exec.js';

/** One simulated host: a network namespace with its own address on the test bridge. */
export interface TestHost {
  /** The namespace's name (`ip netns`), for `nsenter --net=/run/netns/<netns>`. */
  netns: string;
  address: string;
}

/**
 * Several hosts on this machine (machine-notes.md, "Several hosts on one machine"): a bridge in the root
 * namespace with an address of its own (where a registry listens for them), and per host a network
 * namespace plugged into it by a veth pair, with its own address, default route, iptables and (once an
 * agent runs in it) container bridge. Names carry the caller's tag (its branch, e.g. `h18`) and a random
 * suffix, so parallel test files never collide; destroy() removes every namespace and link, also after a
 * half-made setup.
 */
export class TestHosts {
  readonly hosts: TestHost[] = [];
  private readonly suffix = randomBytes(3).toString('hex');
  /** 10.2-99.x.0/24: apart from AgentDaemon's container subnets (10.100-250.x.0/24). */
  private readonly prefix = `10.${randomInt(2, 100)}.${randomInt(0, 256)}`;

  /** `tag`: a few letters and digits that mark these names as the caller's. */
  private constructor(private readonly tag: string) {}

  /** The bridge's name (at most 15 characters). */
  get bridge(): string {
    return `b${this.tag}${this.suffix}`;
  }

  /** The root namespace's address on the bridge: what the hosts reach the registry at. */
  get gateway(): string {
    return `${this.prefix}.1`;
  }

  static async create(count: number, tag: string): Promise<TestHosts> {
    if (!/^[a-z0-9]{1,5}$/.test(tag)) throw new Error(`a host tag is 1 to 5 letters and digits: ${tag}`);
    const hosts = new TestHosts(tag);
    try {
      await run('ip', ['link', 'add', hosts.bridge, 'type', 'bridge']);
      await run('ip', ['addr', 'add', `${hosts.gateway}/24`, 'dev', hosts.bridge]);
      await run('ip', ['link', 'set', hosts.bridge, 'up']);
      for (let index = 1; index <= count; index++) await hosts.addHost(index);
    } catch (error) {
      await hosts.destroy();
      throw error;
    }
    return hosts;
  }

  private async addHost(index: number): Promise<void> {
    const host: TestHost = { netns: `b${this.tag}-${this.suffix}-${index}`, address: `${this.prefix}.${index + 1}` };
    const link = `${this.bridge}v${index}`;
    await run('ip', ['netns', 'add', host.netns]);
    this.hosts.push(host);
    await run('ip', ['link', 'add', link, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', host.netns]);
    await run('ip', ['link', 'set', link, 'master', this.bridge, 'up']);
    const inside = (...args: string[]) => run('ip', ['-n', host.netns, ...args]);
    await inside('addr', 'add', `${host.address}/24`, 'dev', 'eth0');
    await inside('link', 'set', 'eth0', 'up');
    await inside('link', 'set', 'lo', 'up');
    await inside('route', 'add', 'default', 'via', this.gateway);
  }

  /** Removes the namespaces (their veth ends go with them) and the bridge; what is already gone is skipped. */
  async destroy(): Promise<void> {
    for (const host of this.hosts) await run('ip', ['netns', 'del', host.netns], { allowFailure: true });
    await run('ip', ['link', 'del', this.bridge], { allowFailure: true });
  }
}
