import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import test from 'ava';
import { RegistryProcess } from '../helpers/registry-process.js';

async function headStatus(url: string): Promise<number> {
  return (await fetch(url, { method: 'HEAD' })).status;
}

test('the embedded Redis is restarted after it dies, with its data, and requests meanwhile get 503 not 500', async (t) => {
  const registry = await RegistryProcess.start();
  t.teardown(() => registry.destroy());
  const blob = Buffer.from('survives a redis crash');
  const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`;
  const blobUrl = `${registry.url}/v2/crash/redis/blobs/${digest}`;
  t.is((await fetch(`${registry.url}/v2/crash/redis/blobs/uploads/?digest=${digest}`, { method: 'POST', body: blob })).status, 201);

  const pid = Number((await readFile(path.join(registry.dataDir, 'redis', 'redis.pid'), 'utf8')).trim());
  process.kill(pid, 'SIGKILL');

  const seen = new Set<number>();
  const deadline = Date.now() + 15_000;
  let status = 0;
  while (Date.now() < deadline) {
    status = await headStatus(blobUrl);
    seen.add(status);
    if (status === 200 && seen.size > 1 && registry.logs.includes('embedded redis restarted')) break;
    await sleep(100);
  }
  t.is(status, 200);
  t.false(seen.has(500), `statuses seen: ${[...seen].join(',')}`);
  t.regex(registry.logs, /embedded redis restarted/);
});

test('a registry killed with SIGKILL restarts over the same data directory and still serves its blobs', async (t) => {
  const first = await RegistryProcess.start();
  const blob = Buffer.from('acknowledged before the crash');
  const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`;
  t.is((await fetch(`${first.url}/v2/crash/registry/blobs/uploads/?digest=${digest}`, { method: 'POST', body: blob })).status, 201);
  await first.stop('SIGKILL');

  const second = await RegistryProcess.start({ dataDir: first.dataDir });
  t.teardown(() => second.destroy().then(() => first.destroy()));
  const response = await fetch(`${second.url}/v2/crash/registry/blobs/${digest}`);
  t.is(response.status, 200);
  t.deepEqual(Buffer.from(await response.arrayBuffer()), blob);
});

test('a registry killed with SIGKILL takes its embedded redis-server with it', async (t) => {
  const registry = await RegistryProcess.start();
  t.teardown(() => registry.destroy());
  const pid = Number((await readFile(path.join(registry.dataDir, 'redis', 'redis.pid'), 'utf8')).trim());
  await registry.stop('SIGKILL');

  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline && (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')) !== '') await sleep(50);
  t.is(await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => ''), '', `redis-server ${pid} outlived its registry`);
});
