import test, { type ExecutionContext } from 'ava';
import { createHash } from 'node:crypto';
import { createServer, type RequestListener } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { AgentDaemon } from '../helpers/agent-daemon.js';
import { AuthProxy } from '../helpers/agent-auth-proxy.js';
import { layerOf, pushLayout, writeImageLayout, type Layer } from '../helpers/agent-images.js';
import { RegistryProcess } from '../helpers/registry-process.js';
import { S3FaultProxy } from '../helpers/s3-fault-proxy.js';
import { S3Server } from '../helpers/s3-server.js';
import { selectPlatform } from '../../runtime-agent/image/manifest.js';
import { formatReference, parseReference } from '../../oci/reference.js';
import { parseAuthChallenges } from '../../runtime-agent/registry/auth-challenge.js';
import { HttpRegistryClient, registryBaseUrl } from '../../runtime-agent/registry/registry-client.js';

let registry: RegistryProcess;
let workDir: string;
let manifestDigest: string;
let layer: Layer;
const REPOSITORY = 'agent/private';

test.before(async () => {
  workDir = await mkdtemp(path.join(tmpdir(), 'berth-agent-auth-'));
  registry = await RegistryProcess.start();
  const layout = path.join(workDir, 'layout');
  ({ manifestDigest } = await writeImageLayout(layout, 'v1', {
    layers: [(layer = await layerOf([{ name: 'secret', content: 'behind auth\n' }], 'gzip'))],
  }));
  await pushLayout(layout, 'v1', `${registry.host}/${REPOSITORY}:v1`);
});

test.after.always(async () => {
  await registry?.destroy();
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

function clientFor(proxy: AuthProxy, credentials?: { username: string; password: string }) {
  return new HttpRegistryClient(proxy.host, { insecureRegistries: [], stallTimeoutMs: 10_000, credentials, bearerToken: undefined });
}

test('a Bearer challenge is answered with an anonymous token, fetched once per repository', async (t) => {
  const proxy = await AuthProxy.start(registry.url, 'bearer');
  t.teardown(() => proxy.close());
  const client = clientFor(proxy);
  const manifest = await client.fetchManifest(REPOSITORY, 'v1');
  t.is(manifest.mediaType, 'application/vnd.oci.image.manifest.v1+json');
  await client.fetchManifest(REPOSITORY, manifestDigest);
  t.deepEqual(proxy.tokenRequests, [{ authorization: undefined, service: 'berth-test', scope: `repository:${REPOSITORY}:pull` }]);
});

test('a token realm that wants credentials gets them as Basic; wrong ones fail with unauthorized', async (t) => {
  const credentials = { username: 'alice', password: 's3cret:with:colons' };
  const proxy = await AuthProxy.start(registry.url, 'bearer', credentials);
  t.teardown(() => proxy.close());
  await clientFor(proxy, credentials).fetchManifest(REPOSITORY, 'v1');
  t.is(proxy.tokenRequests[0]?.authorization, `Basic ${Buffer.from('alice:s3cret:with:colons').toString('base64')}`);
  await t.throwsAsync(clientFor(proxy, { username: 'alice', password: 'wrong' }).fetchManifest(REPOSITORY, 'v1'), {
    message: /token request .* failed with 401/,
  });
  await t.throwsAsync(clientFor(proxy).fetchManifest(REPOSITORY, 'v1'), { message: /401/ });
});

test('a Basic challenge is answered with the credentials, and without any the pull is unauthorized', async (t) => {
  const credentials = { username: 'bob', password: 'pw' };
  const proxy = await AuthProxy.start(registry.url, 'basic', credentials);
  t.teardown(() => proxy.close());
  const manifest = await clientFor(proxy, credentials).fetchManifest(REPOSITORY, 'v1');
  t.true(manifest.bytes.length > 0);
  await t.throwsAsync(clientFor(proxy).fetchManifest(REPOSITORY, 'v1'), { message: /unauthorized: authentication required/ });
});

test('the CLI pulls through a token-auth registry with --creds', async (t) => {
  const credentials = { username: 'carol', password: 'pw' };
  const proxy = await AuthProxy.start(registry.url, 'bearer', credentials);
  const agent = await AgentDaemon.start();
  t.teardown(async () => {
    await agent.destroy();
    await proxy.close();
  });
  const denied = await agent.cli(['pull', `${proxy.host}/${REPOSITORY}:v1`], { allowFailure: true });
  t.is(denied.code, 1);
  const pull = await agent.cli(['pull', '--creds', 'carol:pw', `${proxy.host}/${REPOSITORY}:v1`]);
  t.regex(pull.stdout, /Pull complete/);
  t.regex((await agent.cli(['images'])).stdout, new RegExp(`${proxy.host}/${REPOSITORY}\\s+v1`));
});

test('a blob the registry redirects to a presigned S3 URL is read from there, with its Range and without the registry token', async (t) => {
  const s3 = await S3Server.start();
  const s3Front = await S3FaultProxy.start(s3.port);
  const s3Registry = await RegistryProcess.start({ env: s3.registryEnv({ redirect: true, endpoint: s3Front.endpoint }) });
  const proxy = await AuthProxy.start(s3Registry.url, 'bearer');
  t.teardown(async () => {
    await proxy.close();
    await s3Registry.destroy();
    await s3Front.stop();
    await s3.stop();
  });
  const layout = path.join(workDir, 'layout-s3');
  await writeImageLayout(layout, 'v1', { layers: [layer] });
  await pushLayout(layout, 'v1', `${s3Registry.host}/${REPOSITORY}:v1`);
  s3Front.gets.length = 0;

  const client = clientFor(proxy);
  const whole = await client.fetchBlob(REPOSITORY, layer.digest, 0);
  t.is(whole.offset, 0);
  t.is(
    `sha256:${createHash('sha256')
      .update(await bytesOf(whole.stream))
      .digest('hex')}`,
    layer.digest,
  );
  const tail = await client.fetchBlob(REPOSITORY, layer.digest, 10);
  t.is(tail.offset, 10);
  t.deepEqual(await bytesOf(tail.stream), layer.blob.subarray(10));

  const blobGets = s3Front.gets.filter((get) => get.url.includes(layer.digest.slice('sha256:'.length)));
  t.is(blobGets.length, 2);
  for (const get of blobGets) {
    t.regex(get.url, /X-Amz-Signature=/);
    t.is(get.authorization, undefined, 'the registry token stays with the registry');
  }
});

test('a registry that accepts a blob request and never answers is given up after the stall timeout, not waited on', async (t) => {
  const client = await clientOfStub(t, () => undefined, 1_000);
  await t.throwsAsync(client.fetchBlob(REPOSITORY, layer.digest, 0), { message: /no data for 1 s/ });
});

test("a registry that pauses longer than node's default socket timeout (5 s) but within the stall timeout is waited for", async (t) => {
  const client = await clientOfStub(
    t,
    (_request, response) => {
      const timer = setTimeout(() => response.writeHead(200, { 'Content-Length': String(layer.blob.length) }).end(layer.blob), 6_000);
      response.on('close', () => clearTimeout(timer));
    },
    30_000,
  );
  const { stream } = await client.fetchBlob(REPOSITORY, layer.digest, 0);
  t.deepEqual(await bytesOf(stream), layer.blob);
});

/** A client of a registry stand-in on a loopback port that answers blob requests with `handler`; closed at the test's end. */
async function clientOfStub(t: ExecutionContext, handler: RequestListener, stallTimeoutMs: number): Promise<HttpRegistryClient> {
  const stub = createServer(handler);
  await new Promise<void>((resolve) => stub.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    stub.closeAllConnections();
    stub.close();
  });
  const host = `127.0.0.1:${(stub.address() as AddressInfo).port}`;
  return new HttpRegistryClient(host, { insecureRegistries: [], stallTimeoutMs, credentials: undefined, bearerToken: undefined });
}

async function bytesOf(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

test('WWW-Authenticate parsing: several challenges, quoted commas and escapes, token68', (t) => {
  t.deepEqual(
    parseAuthChallenges('Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push"'),
    [{ scheme: 'bearer', params: { realm: 'https://auth.example/token', service: 'registry.example', scope: 'repository:a/b:pull,push' } }],
  );
  t.deepEqual(parseAuthChallenges('Negotiate abc123==, Basic realm="say \\"hi\\"", bearer realm=https://x/t'), [
    { scheme: 'negotiate', params: {} },
    { scheme: 'basic', params: { realm: 'say "hi"' } },
    { scheme: 'bearer', params: { realm: 'https://x/t' } },
  ]);
  t.deepEqual(parseAuthChallenges(null), []);
});

test('references are parsed and normalized like docker', (t) => {
  t.deepEqual(parseReference('busybox'), { registry: 'docker.io', repository: 'library/busybox', tag: 'latest', digest: undefined });
  t.deepEqual(parseReference('127.0.0.1:5000/a/b:tag'), { registry: '127.0.0.1:5000', repository: 'a/b', tag: 'tag', digest: undefined });
  const digest = `sha256:${'a'.repeat(64)}`;
  t.deepEqual(parseReference(`localhost/x@${digest}`), { registry: 'localhost', repository: 'x', tag: undefined, digest });
  t.deepEqual(parseReference(`team/app:1.0@${digest}`), { registry: 'docker.io', repository: 'team/app', tag: '1.0', digest });
  t.is(formatReference(parseReference('docker.io/library/redis:7')), 'redis:7');
  t.is(formatReference(parseReference('registry.example:443/a:b')), 'registry.example:443/a:b');
  for (const bad of ['UPPER/case', 'a//b', 'a:b:c', 'a@sha256:short', '', 'a/b:-tag']) t.throws(() => parseReference(bad), undefined, bad);
});

test('loopback registries are plain http, others https unless declared insecure', (t) => {
  t.is(registryBaseUrl('127.0.0.1:5000', []), 'http://127.0.0.1:5000');
  t.is(registryBaseUrl('localhost:5000', []), 'http://localhost:5000');
  t.is(registryBaseUrl('[::1]:5000', []), 'http://[::1]:5000');
  t.is(registryBaseUrl('registry.example', []), 'https://registry.example');
  t.is(registryBaseUrl('10.0.0.5:5000', ['10.0.0.5:5000']), 'http://10.0.0.5:5000');
  t.is(registryBaseUrl('docker.io', []), 'https://registry-1.docker.io');
});

test('an index entry is chosen by os, architecture and variant', (t) => {
  const entry = (architecture: string, variant?: string, os = 'linux') => ({
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    digest: `sha256:${Buffer.from(`${os}${architecture}${variant}`).toString('hex').padEnd(64, '0').slice(0, 64)}`,
    size: 1,
    platform: { os, architecture, ...(variant ? { variant } : {}) },
  });
  const index = [
    entry('arm', 'v6'),
    entry('arm', 'v7'),
    entry('arm64'),
    entry('amd64', 'v3'),
    entry('amd64'),
    entry('amd64', undefined, 'windows'),
  ];
  t.is(selectPlatform(index, { os: 'linux', architecture: 'amd64' }), index[4]!);
  t.is(selectPlatform(index, { os: 'linux', architecture: 'amd64', variant: 'v3' }), index[3]!);
  t.is(selectPlatform(index, { os: 'linux', architecture: 'arm', variant: 'v7' }), index[1]!);
  t.is(selectPlatform(index, { os: 'linux', architecture: 'arm64', variant: 'v8' }), index[2]!);
  t.throws(() => selectPlatform(index, { os: 'linux', architecture: 'riscv64' }), { message: /no manifest for linux\/riscv64/ });
});
