import test from 'ava';
import { spawn } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { AgentDaemon } from '../helpers/agent-daemon.js';
import { layerOf, pushLayout, writeImageLayout, type Layer } from '../helpers/agent-images.js';
import { RegistryProcess } from '../helpers/registry-process.js';
import { chainIds } from '../../oci/digest.js';

let registry: RegistryProcess;
let agent: AgentDaemon;
let workDir: string;

test.before(async () => {
  workDir = await mkdtemp(path.join(tmpdir(), 'berth-agent-download-'));
  registry = await RegistryProcess.start();
  // A registry serving a truncated file stalls the connection: give up on it quickly.
  agent = await AgentDaemon.start(['--stall-timeout', '1']);
});

test.after.always(async () => {
  await agent?.destroy();
  await registry?.destroy();
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

async function push(repository: string, layers: Layer[]): Promise<string> {
  const layout = path.join(workDir, repository.replaceAll('/', '_'));
  await writeImageLayout(layout, 'test', { layers });
  await pushLayout(layout, 'test', `${registry.host}/${repository}:test`);
  return `${registry.host}/${repository}:test`;
}

/** A layer of incompressible bytes, big enough that half of it is a meaningful partial download. */
function bigLayer(): Promise<Layer> {
  return layerOf([{ name: 'data.bin', content: randomBytes(768 * 1024).toString('base64') }], 'gzip');
}

/**
 * A registry in front of the test's: every request is answered as the registry answers it, except a GET of
 * `layer`'s blob, which gets the registry's headers for it, half of its bytes, and then nothing more.
 */
async function stallingFront(layer: Layer): Promise<{ host: string; close(): void }> {
  const server = http.createServer((request, response) => {
    void (async () => {
      const upstream = await fetch(new URL(request.url ?? '/', registry.url), {
        method: request.method,
        headers: { accept: request.headers.accept ?? '*/*' },
      });
      const headers = Object.fromEntries([...upstream.headers].filter(([name]) => FORWARDED_HEADERS.includes(name)));
      response.writeHead(upstream.status, headers);
      const body = Buffer.from(await upstream.arrayBuffer());
      if (request.method === 'GET' && request.url?.endsWith(`/blobs/${layer.digest}`)) response.write(body.subarray(0, body.length >> 1));
      else response.end(body);
    })().catch(() => response.destroy());
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    host: `127.0.0.1:${port}`,
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}

const FORWARDED_HEADERS = ['content-type', 'content-length', 'docker-content-digest', 'location', 'www-authenticate'];

/** The registry's own file for a blob, to damage it behind the registry's back. */
function registryBlobFile(digest: string): string {
  const hex = digest.slice('sha256:'.length);
  return path.join(registry.dataDir, 'storage', 'blobs', 'sha256', hex.slice(0, 2), hex);
}

function partialFile(digest: string): string {
  return path.join(agent.dataDir, 'content', 'ingest', digest.replace(':', '-'));
}

/** Statuses the registry answered for GETs of this blob, in order. */
function blobGetStatuses(digest: string): number[] {
  return registry.logs
    .split('\n')
    .filter((line) => line.includes('"method":"GET"') && line.includes(`/blobs/${digest}"`))
    .map((line) => Number(/"status":(\d+)/.exec(line)?.[1]));
}

test.serial('a layer whose bytes do not match its digest is refused and leaves nothing visible', async (t) => {
  const good = await layerOf([{ name: 'good', content: 'fine\n' }], 'gzip');
  const bad = await bigLayer();
  const reference = await push('agent/corrupt', [good, bad]);
  const file = registryBlobFile(bad.digest);
  const bytes = await readFile(file);
  bytes[bytes.length >> 1] = bytes[bytes.length >> 1]! ^ 0xff;
  await writeFile(file, bytes);

  const pull = await agent.cli(['pull', reference], { allowFailure: true });
  t.is(pull.code, 1);
  t.regex(pull.stderr, new RegExp(`${bad.digest}: content hashes to sha256:`));
  t.false((await agent.cli(['images'])).stdout.includes('agent/corrupt'));
  t.false((await agent.blobs()).includes(bad.digest));
  t.false(existsSync(partialFile(bad.digest)));
  const [, badChain] = chainIds([good.diffId, bad.diffId]);
  t.false(existsSync(agent.snapshotFiles(badChain!)));
  t.deepEqual(
    (await readdir(path.join(agent.dataDir, 'snapshots'))).filter((name) => name.startsWith('.')),
    [],
  );
});

test.serial('a layer whose content differs from its DiffID is refused after unpacking and leaves no snapshot', async (t) => {
  const layer = await layerOf([{ name: 'file', content: 'real\n' }], 'zstd');
  const liar = { ...layer, diffId: (await layerOf([{ name: 'file', content: 'claimed\n' }], 'none')).diffId };
  const pull = await agent.cli(['pull', await push('agent/diffid', [liar])], { allowFailure: true });
  t.is(pull.code, 1);
  t.regex(pull.stderr, /unpacks to DiffID sha256:\w+, the image config says/);
  t.false(existsSync(agent.snapshotFiles(liar.diffId)));
  t.deepEqual(
    (await readdir(path.join(agent.dataDir, 'snapshots'))).filter((name) => name.startsWith('.')),
    [],
  );
});

test.serial('a truncated layer is refused', async (t) => {
  const layer = await bigLayer();
  const reference = await push('agent/truncated', [layer]);
  await truncate(registryBlobFile(layer.digest), layer.blob.length >> 1);
  const pull = await agent.cli(['pull', reference], { allowFailure: true });
  t.is(pull.code, 1);
  t.regex(pull.stderr, new RegExp(`${layer.digest}: download interrupted at \\d+ of ${layer.blob.length} bytes`));
  t.false((await agent.blobs()).includes(layer.digest));
  t.false((await agent.cli(['images'])).stdout.includes('agent/truncated'));
});

test.serial('an interrupted download resumes with a Range request and the whole blob is verified', async (t) => {
  const layer = await bigLayer();
  const reference = await push('agent/resume', [layer]);
  await writeFile(partialFile(layer.digest), layer.blob.subarray(0, layer.blob.length >> 1));

  await agent.cli(['pull', reference]);
  t.deepEqual(blobGetStatuses(layer.digest), [206]);
  t.true((await agent.blobs()).includes(layer.digest));
  t.false(existsSync(partialFile(layer.digest)));
});

test.serial('a resumed download whose partial file was damaged starts over and succeeds', async (t) => {
  const layer = await bigLayer();
  const reference = await push('agent/resume-bad', [layer]);
  const damaged = Buffer.from(layer.blob.subarray(0, layer.blob.length >> 1));
  damaged[100] = damaged[100]! ^ 0xff;
  await writeFile(partialFile(layer.digest), damaged);

  await agent.cli(['pull', reference]);
  t.deepEqual(blobGetStatuses(layer.digest), [206, 200]);
  t.true((await agent.blobs()).includes(layer.digest));
});

test.serial('the CLI of a daemon killed mid-pull says it lost the daemon, names its socket and exits non-zero', async (t) => {
  const layer = await bigLayer();
  const pushed = await push('agent/killed-daemon', [layer]);
  // The registry aborts a response whose file turns out short, which could end the pull before the kill: in
  // front of it, a server that sends half of the layer's bytes and then nothing, so the download is under way.
  const front = await stallingFront(layer);
  t.teardown(() => front.close());
  const reference = pushed.replace(registry.host, front.host);
  const doomed = await AgentDaemon.start();
  t.teardown(() => doomed.destroy());
  const command = doomed.cliCommand(['pull', reference]);
  const cli = spawn(command.file, command.args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const closed = once(cli, 'close') as Promise<[number | null]>;
  let stdout = '';
  let stderr = '';
  cli.stdout.setEncoding('utf8').on('data', (text: string) => (stdout += text));
  cli.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
  const deadline = Date.now() + 20_000;
  while (!stdout.includes('Downloading') && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
  t.regex(stdout, /Downloading/, 'the pull was under way');

  process.kill(doomed.pid!, 'SIGKILL');
  const [code] = await closed;

  t.is(code, 1);
  const socket = path.join(doomed.dataDir, 'agent.sock');
  t.is(stderr.trim(), `Error: lost the connection to the berth-agent daemon at unix://${socket} during the pull (did the daemon exit?)`);
});
