import test, { type ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { run } from '../helpers/exec.js';
import { freePort } from '../helpers/free-port.js';
import type { PortMapping } from '../../runtime-agent/container/container-spec.js';
import { ContainerNetwork, type NetworkAttachment, type NetworkConfig } from '../../runtime-agent/network/container-network.js';
import { containerResolvConf, FALLBACK_NAMESERVERS, writeContainerEtcFiles } from '../../runtime-agent/network/etc-files.js';
import { silentLogger } from '../../platform/logger.js';
import { runHostCommand } from '../../runtime-agent/support/host-command.js';

// Real bridges, namespaces and iptables rules. Each test has a bridge and a /24 of its own, so tests (and
// other test files) run at once without meeting, and removes them at its end.

const logger = silentLogger();
let subnetCounter = randomInt(256);

async function newNetwork(t: ExecutionContext): Promise<{ network: ContainerNetwork; config: NetworkConfig }> {
  const stateDir = await mkdtemp(path.join(tmpdir(), 'berth-network-'));
  subnetCounter = (subnetCounter + 1) % 256;
  const config = { bridgeName: `bt${randomBytes(4).toString('hex')}`, subnet: `10.${randomInt(100, 200)}.${subnetCounter}.0/24`, stateDir };
  const network = new ContainerNetwork(config, logger);
  t.teardown(async () => {
    await network.destroy();
    await rm(stateDir, { recursive: true, force: true });
  });
  return { network, config };
}

function newContainerId(): string {
  return randomBytes(32).toString('hex');
}

function tcp(hostPort: number, containerPort: number, hostIp = '0.0.0.0'): PortMapping {
  return { hostIp, hostPort, containerPort, protocol: 'tcp' };
}

function inNamespace(attachment: NetworkAttachment, command: string[], timeoutMs = 10_000) {
  return run('nsenter', [`--net=${attachment.netnsPath}`, ...command], { timeoutMs });
}

async function linksIn(attachment: NetworkAttachment) {
  const output = await inNamespace(attachment, ['ip', '-json', 'address', 'show']);
  return JSON.parse(output.stdout) as {
    ifname: string;
    flags: string[];
    addr_info: { family: string; local: string; prefixlen: number }[];
  }[];
}

/** Plays a container: busybox httpd inside the attachment's namespace, serving `text` on port 80. */
async function serveHttp(t: ExecutionContext, attachment: NetworkAttachment, text: string): Promise<void> {
  const root = await mkdtemp(path.join(tmpdir(), 'berth-network-www-'));
  await writeFile(path.join(root, 'index.html'), text);
  const server = spawn('nsenter', [`--net=${attachment.netnsPath}`, 'busybox', 'httpd', '-f', '-p', '80', '-h', root], { stdio: 'ignore' });
  t.teardown(async () => {
    server.kill('SIGKILL');
    await rm(root, { recursive: true, force: true });
  });
  await eventually(() => httpGet(attachment.ipAddress ?? '', 80));
}

/** The body of a plain HTTP/1.0 GET, over a socket of its own (no connection pool outliving the test). */
function httpGet(host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port, timeout: 3000 });
    let response = '';
    socket.setEncoding('utf8').on('data', (text: string) => (response += text));
    socket.once('connect', () => socket.write('GET / HTTP/1.0\r\n\r\n'));
    socket.once('timeout', () => socket.destroy(new Error(`no answer from ${host}:${port}`)));
    socket.once('error', reject);
    socket.once('end', () => resolve(response.slice(response.indexOf('\r\n\r\n') + 4)));
  });
}

/** An HTTP GET from inside a namespace, with busybox nc (busybox wget crashes on this Debian build). */
async function httpGetFrom(attachment: NetworkAttachment, host: string, port: number): Promise<string> {
  const script = `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | busybox nc -w 3 ${host} ${port}`;
  const { stdout } = await inNamespace(attachment, ['busybox', 'sh', '-c', script]);
  return stdout.slice(stdout.indexOf('\r\n\r\n') + 4);
}

async function eventually<T>(attempt: () => Promise<T>, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await attempt();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

/** The host's address on its default route, if it has one: a non-loopback address a published port must answer on. */
async function hostAddress(): Promise<string | undefined> {
  const [route] = JSON.parse((await run('ip', ['-json', '-4', 'route', 'show', 'default'])).stdout) as { dev: string }[];
  if (!route) return undefined;
  const [link] = JSON.parse((await run('ip', ['-json', '-4', 'address', 'show', 'dev', route.dev])).stdout) as {
    addr_info: { local: string }[];
  }[];
  return link?.addr_info[0]?.local;
}

async function ruleLinesMentioning(text: string): Promise<string[]> {
  return (await run('iptables-save', [])).stdout.split('\n').filter((line) => line.includes(text));
}

test('a bridge attachment gives the namespace eth0 with its address, a default route through the gateway and lo up', async (t) => {
  const { network, config } = await newNetwork(t);
  const attachment = await network.attach(newContainerId(), 'bridge', []);
  const prefix = config.subnet.slice(0, config.subnet.lastIndexOf('.'));
  t.like(attachment, { mode: 'bridge', ipAddress: `${prefix}.2`, gateway: `${prefix}.1` });
  t.deepEqual(attachment.ports, []);
  t.true(existsSync(attachment.netnsPath ?? ''));

  const links = await linksIn(attachment);
  t.deepEqual(links.map((link) => link.ifname).sort(), ['eth0', 'lo']);
  const eth0 = links.find((link) => link.ifname === 'eth0');
  t.deepEqual(
    eth0?.addr_info.filter((address) => address.family === 'inet').map((address) => `${address.local}/${address.prefixlen}`),
    [`${prefix}.2/24`],
  );
  t.true(links.find((link) => link.ifname === 'lo')?.flags.includes('UP'));
  const routes = JSON.parse((await inNamespace(attachment, ['ip', '-json', 'route', 'show', 'default'])).stdout) as {
    gateway: string;
    dev: string;
  }[];
  t.deepEqual(
    routes.map((route) => [route.gateway, route.dev]),
    [[`${prefix}.1`, 'eth0']],
  );
  await inNamespace(attachment, ['busybox', 'ping', '-c', '1', '-W', '2', `${prefix}.1`]);
});

test('a published port answers from the host on 127.0.0.1 and on its own address; host port 0 picks one', async (t) => {
  const { network } = await newNetwork(t);
  const loopbackOnly = await freePort();
  const attachment = await network.attach(newContainerId(), 'bridge', [tcp(0, 80), tcp(loopbackOnly, 80, '127.0.0.1')]);
  const [anyAddress, loopback] = attachment.ports;
  t.true((anyAddress?.hostPort ?? 0) > 0, 'the picked port is returned');
  t.is(loopback?.hostPort, loopbackOnly);
  await serveHttp(t, attachment, 'hello from the container\n');

  t.is(await httpGet('127.0.0.1', anyAddress?.hostPort ?? 0), 'hello from the container\n');
  t.is(await httpGet('127.0.0.1', loopbackOnly), 'hello from the container\n');
  const address = await hostAddress();
  if (address === undefined) return t.log('no default route: the non-loopback address is not tried');
  t.is(await httpGet(address, anyAddress?.hostPort ?? 0), 'hello from the container\n');
  await t.throwsAsync(
    httpGet(address, loopbackOnly),
    { code: 'ECONNREFUSED' },
    'a port published on 127.0.0.1 only is not published on other addresses',
  );
});

test('a published UDP port answers from the host', async (t) => {
  const { network } = await newNetwork(t);
  const attachment = await network.attach(newContainerId(), 'bridge', [
    { hostIp: '127.0.0.1', hostPort: 0, containerPort: 5353, protocol: 'udp' },
  ]);
  const echo =
    "require('dgram').createSocket('udp4').on('message', function (m, from) { this.send('echo ' + m, from.port, from.address); }).bind(5353)";
  const server = spawn('nsenter', [`--net=${attachment.netnsPath}`, process.execPath, '-e', echo], { stdio: 'ignore' });
  t.teardown(() => server.kill('SIGKILL'));

  const client = createSocket('udp4');
  t.teardown(() => client.close());
  const reply = new Promise<string>((resolve, reject) => {
    client.once('message', (message) => resolve(message.toString()));
    setTimeout(() => reject(new Error('no UDP answer in 5 s')), 5000).unref();
  });
  const hostPort = attachment.ports[0]?.hostPort ?? 0;
  // Datagrams sent before the server is up are lost: send until one comes back.
  const sender = setInterval(() => client.send('ping', hostPort, '127.0.0.1'), 100);
  t.teardown(() => clearInterval(sender));
  t.is(await reply, 'echo ping');
});

test('two containers on the bridge reach each other by address, and a published port through the host address (hairpin)', async (t) => {
  const { network } = await newNetwork(t);
  const server = await network.attach(newContainerId(), 'bridge', [tcp(0, 80)]);
  const client = await network.attach(newContainerId(), 'bridge', []);
  await serveHttp(t, server, 'neighbour\n');

  await inNamespace(client, ['busybox', 'ping', '-c', '1', '-W', '2', server.ipAddress ?? '']);
  t.is(await httpGetFrom(client, server.ipAddress ?? '', 80), 'neighbour\n');
  const hostPort = server.ports[0]?.hostPort ?? 0;
  t.is(await httpGetFrom(client, server.gateway ?? '', hostPort), 'neighbour\n', 'a neighbour through the published port');
  t.is(await httpGetFrom(server, server.gateway ?? '', hostPort), 'neighbour\n', 'the container itself through its published port');
});

test('outbound connections leave masqueraded behind the host address', async (t) => {
  const { network } = await newNetwork(t);
  const attachment = await network.attach(newContainerId(), 'bridge', []);
  // An "outside" network: a namespace behind a /30 with no route back to the container subnet, so only
  // masqueraded packets get an answer.
  const outside = `bto${randomBytes(4).toString('hex')}`;
  const [first, second] = [randomInt(200, 250), randomInt(256)]; // apart from the containers' 10.100-199.x
  await run('ip', ['netns', 'add', outside]);
  t.teardown(() => run('ip', ['netns', 'del', outside], { allowFailure: true }).then(() => undefined));
  await run('ip', ['link', 'add', outside, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', outside]);
  t.teardown(() => run('ip', ['link', 'del', outside], { allowFailure: true }).then(() => undefined));
  await run('ip', ['-batch', '-'], { input: `addr add 10.${first}.${second}.1/30 dev ${outside}\nlink set ${outside} up\n` });
  await run('ip', ['-netns', outside, '-batch', '-'], { input: `addr add 10.${first}.${second}.2/30 dev eth0\nlink set eth0 up\n` });

  const { stdout } = await eventually(() => inNamespace(attachment, ['busybox', 'ping', '-c', '1', '-W', '1', `10.${first}.${second}.2`]));
  t.regex(stdout, / 0% packet loss/);
});

test("'none' and 'host' make no namespace on the host (runc makes none's, with lo up); 'host' drops published ports", async (t) => {
  const { network } = await newNetwork(t);
  const isolatedId = newContainerId();
  const isolated = await network.attach(isolatedId, 'none', []);
  t.deepEqual(isolated, { mode: 'none', netnsPath: undefined, ipAddress: undefined, gateway: undefined, ports: [] });
  t.false(existsSync(`/run/netns/berth-${isolatedId.slice(0, 12)}`));
  t.deepEqual(await network.attachment(isolatedId), isolated);

  const shared = await network.attach(newContainerId(), 'host', [tcp(8080, 80)]);
  t.deepEqual(shared, { mode: 'host', netnsPath: undefined, ipAddress: undefined, gateway: undefined, ports: [] });
});

test('detach removes the veth pair, the namespace, the port rules and the address claim; a second detach is harmless', async (t) => {
  const { network, config } = await newNetwork(t);
  const containerId = newContainerId();
  const attachment = await network.attach(containerId, 'bridge', [
    tcp(0, 80),
    { hostIp: '0.0.0.0', hostPort: 0, containerPort: 53, protocol: 'udp' },
  ]);
  const hostLink = `vb-${containerId.slice(0, 12)}`;
  await run('ip', ['link', 'show', hostLink]);
  t.is((await ruleLinesMentioning(containerId)).length, 2);

  await network.detach(containerId);
  t.is((await run('ip', ['link', 'show', hostLink], { allowFailure: true })).code, 1);
  t.false(existsSync(attachment.netnsPath ?? ''));
  t.deepEqual(await ruleLinesMentioning(containerId), []);
  t.deepEqual(await readdir(path.join(config.stateDir, 'addresses')), []);
  t.deepEqual(await readdir(path.join(config.stateDir, 'host-ports')), []);
  t.is(await network.attachment(containerId), undefined);
  await network.detach(containerId);

  const next = await network.attach(newContainerId(), 'bridge', [attachment.ports[0] as PortMapping]);
  t.is(next.ipAddress, attachment.ipAddress, 'the address is free again');
  t.deepEqual(next.ports[0], attachment.ports[0], 'and so is the host port');
});

test('after a restart, removeLeftovers removes the attachments of containers that are not live and keeps the live ones', async (t) => {
  const { network, config } = await newNetwork(t);
  const live = newContainerId();
  const gone = newContainerId();
  const liveAttachment = await network.attach(live, 'bridge', [tcp(0, 80)]);
  const goneAttachment = await network.attach(gone, 'bridge', [tcp(0, 80)]);
  const goneIsolated = newContainerId();
  await network.attach(goneIsolated, 'none', []);

  const restarted = new ContainerNetwork(config, logger);
  await restarted.init();
  await restarted.removeLeftovers(new Set([live]));

  for (const containerId of [gone, goneIsolated]) {
    t.false(existsSync(`/run/netns/berth-${containerId.slice(0, 12)}`));
    t.is((await run('ip', ['link', 'show', `vb-${containerId.slice(0, 12)}`], { allowFailure: true })).code, 1);
    t.deepEqual(await ruleLinesMentioning(containerId), []);
    t.is(await restarted.attachment(containerId), undefined);
  }
  t.deepEqual(await restarted.attachment(live), liveAttachment);
  t.is((await ruleLinesMentioning(live)).length, 1);
  await serveHttp(t, liveAttachment, 'still here\n');
  t.is(await httpGet('127.0.0.1', liveAttachment.ports[0]?.hostPort ?? 0), 'still here\n');
  const reused = await restarted.attach(newContainerId(), 'bridge', []);
  t.is(reused.ipAddress, goneAttachment.ipAddress, "the gone container's address is free");
});

test('concurrent attaches, from two agents sharing the state directory, get distinct addresses', async (t) => {
  const { network, config } = await newNetwork(t);
  await network.init();
  const other = new ContainerNetwork(config, logger);
  const attachments = await Promise.all(
    Array.from({ length: 8 }, (_, index) => (index % 2 ? network : other).attach(newContainerId(), 'bridge', [])),
  );
  const addresses = attachments.map((attachment) => attachment.ipAddress);
  t.is(new Set(addresses).size, 8);
  for (const attachment of attachments) {
    const eth0 = (await linksIn(attachment)).find((link) => link.ifname === 'eth0');
    t.is(eth0?.addr_info.find((address) => address.family === 'inet')?.local, attachment.ipAddress);
  }
});

test('init is idempotent: again, and in a restarted agent, it leaves the same rules', async (t) => {
  const { network, config } = await newNetwork(t);
  await network.init();
  const installed = await ruleLinesMentioning(config.bridgeName);
  t.true(installed.length >= 10);
  await new ContainerNetwork(config, logger).init();
  t.deepEqual(await ruleLinesMentioning(config.bridgeName), installed);

  await network.destroy();
  t.deepEqual(await ruleLinesMentioning(config.bridgeName), []);
  t.is((await run('ip', ['link', 'show', config.bridgeName], { allowFailure: true })).code, 1);
});

test('a subnet overlapping a route of the host is refused, naming the route', async (t) => {
  const { network, config } = await newNetwork(t);
  await network.init();
  const clash = new ContainerNetwork({ ...config, bridgeName: `${config.bridgeName}x` }, logger);
  await t.throwsAsync(clash.init(), {
    message: new RegExp(`overlaps routes of the host \\(${config.subnet.replaceAll('.', '\\.')} on ${config.bridgeName}\\)`),
  });
});

test('a host port already published is refused, and the failed attach leaves nothing behind', async (t) => {
  const { network, config } = await newNetwork(t);
  const first = await network.attach(newContainerId(), 'bridge', [tcp(0, 80)]);
  const hostPort = first.ports[0]?.hostPort ?? 0;
  const refused = newContainerId();
  await t.throwsAsync(network.attach(refused, 'bridge', [tcp(hostPort, 8080)]), {
    message: `host port ${hostPort}/tcp is already published by another container`,
  });
  t.false(existsSync(`/run/netns/berth-${refused.slice(0, 12)}`));
  t.deepEqual(await readdir(path.join(config.stateDir, 'addresses')), [first.ipAddress]);
  t.is(await network.attachment(refused), undefined);
});

test('a host port in use by a host process is refused, naming the address', async (t) => {
  const { network } = await newNetwork(t);
  const busy = createSocket('udp4');
  await new Promise<void>((resolve) => busy.bind(0, '127.0.0.1', resolve));
  t.teardown(() => busy.close());
  const port = busy.address().port;
  await t.throwsAsync(
    network.attach(newContainerId(), 'bridge', [{ hostIp: '127.0.0.1', hostPort: port, containerPort: 53, protocol: 'udp' }]),
    {
      message: new RegExp(`^host port 127\\.0\\.0\\.1:${port}/udp cannot be published: bind EADDRINUSE`),
    },
  );
});

test('a failing host command names the command line and what it printed', async (t) => {
  await t.throwsAsync(runHostCommand('ip', ['link', 'del', 'bt-nosuchlink']), {
    message: 'ip link del bt-nosuchlink failed: Cannot find device "bt-nosuchlink"',
  });
});

test('etc files: hosts maps the hostname to the container address, resolv.conf keeps only servers a container can reach', async (t) => {
  const directory = await mkdtemp(path.join(tmpdir(), 'berth-network-etc-'));
  t.teardown(() => rm(directory, { recursive: true, force: true }));
  const files = await writeContainerEtcFiles(path.join(directory, 'etc'), { hostname: 'web1', ipAddress: '10.87.0.2' });
  t.deepEqual(files, {
    hosts: path.join(directory, 'etc', 'hosts'),
    hostname: path.join(directory, 'etc', 'hostname'),
    resolvConf: path.join(directory, 'etc', 'resolv.conf'),
  });
  const hosts = await readFile(files.hosts, 'utf8');
  t.true(hosts.startsWith('127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n'));
  t.true(hosts.endsWith('\n10.87.0.2\tweb1\n'));
  t.is(await readFile(files.hostname, 'utf8'), 'web1\n');
  t.is(await readFile(files.resolvConf, 'utf8'), containerResolvConf([await readFile('/etc/resolv.conf', 'utf8')]));
  const isolated = await writeContainerEtcFiles(path.join(directory, 'none'), { hostname: 'solo', ipAddress: undefined });
  t.true((await readFile(isolated.hosts, 'utf8')).endsWith('\n127.0.1.1\tsolo\n'));

  t.is(
    containerResolvConf(['search corp.example\nnameserver 127.0.0.53\nnameserver 10.1.1.1\nnameserver fd00::1\noptions ndots:2\n']),
    'search corp.example\nnameserver 10.1.1.1\noptions ndots:2\n',
  );
  t.is(
    containerResolvConf(['nameserver 127.0.0.53\nsearch lan\n', 'nameserver 192.0.2.53\n']),
    'nameserver 192.0.2.53\n',
    "systemd-resolved's upstream file",
  );
  t.is(
    containerResolvConf(['nameserver 127.0.0.1\nsearch lan\n']),
    `search lan\n${FALLBACK_NAMESERVERS.map((server) => `nameserver ${server}`).join('\n')}\n`,
  );
});
