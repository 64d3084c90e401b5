import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import test from 'ava';
import { run } from '../helpers/exec.js';
import { RedisServer } from '../helpers/redis-server.js';
import { RegistryProcess } from '../helpers/registry-process.js';

const CLI = fileURLToPath(new URL('../../server/cli.js', import.meta.url));

function runCli(args: string[], env: Record<string, string> = {}) {
  return run(process.execPath, [CLI, ...args], { env, allowFailure: true, timeoutMs: 20_000 });
}

test('berth --help lists the serve command', async (t) => {
  const result = await runCli(['--help']);
  t.is(result.code, 0);
  t.regex(result.stdout, /serve/);
});

test('berth serve --help documents port, data directory and Redis options', async (t) => {
  const result = await runCli(['serve', '--help']);
  t.is(result.code, 0);
  for (const option of ['--port', '--data-dir', '--redis-url', '--config']) t.true(result.stdout.includes(option), option);
});

test('a missing redis-server binary is a one-line error that says how to install it', async (t) => {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'berth-cli-'));
  t.teardown(() => rm(dataDir, { recursive: true, force: true }));
  const result = await runCli(['serve', '--port', '0', '--data-dir', dataDir], {
    BERTH_REDIS__EMBEDDED__BINARY: '/nonexistent/redis-server',
  });
  t.is(result.code, 2);
  const lines = result.stderr.trim().split('\n');
  t.is(lines.length, 1);
  t.regex(lines[0] ?? '', /redis-server not found.*apt-get install redis-server/);
});

test('an invalid configuration value names the key and the environment variable that set it', async (t) => {
  const result = await runCli(['serve'], { BERTH_HTTP__PORT: 'not-a-port' });
  t.is(result.code, 2);
  t.regex(result.stderr, /http\.port/);
  t.regex(result.stderr, /BERTH_HTTP__PORT/);
});

test('an unknown key in the YAML config file is rejected with its path', async (t) => {
  const directory = await mkdtemp(path.join(tmpdir(), 'berth-cli-'));
  t.teardown(() => rm(directory, { recursive: true, force: true }));
  const file = path.join(directory, 'config.yml');
  await writeFile(file, 'http:\n  port: 5000\n  prot: 1\n');
  const result = await runCli(['serve', '--config', file]);
  t.is(result.code, 2);
  t.regex(result.stderr, /http.*prot/);
  t.true(result.stderr.includes(file));
});

test('with a Redis URL the registry uses that server and starts no embedded Redis', async (t) => {
  const redis = await RedisServer.start();
  t.teardown(() => redis.stop());
  const registry = await RegistryProcess.start({ args: ['--redis-url', redis.url] });
  t.teardown(() => registry.destroy());
  const blob = Buffer.from('external redis blob');
  const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`;
  const upload = await fetch(`${registry.url}/v2/ext/repo/blobs/uploads/?digest=${digest}`, { method: 'POST', body: blob });
  t.is(upload.status, 201);
  const client = redis.client();
  t.teardown(() => client.quit());
  t.is(await client.hget(`berth:b:${digest}`, 'size'), String(blob.length));
  await t.throwsAsync(stat(path.join(registry.dataDir, 'redis')));
});

test('serve on a port already in use exits non-zero naming the port and leaves no redis-server behind', async (t) => {
  const holder = createServer();
  await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => holder.close(() => resolve())));
  const port = (holder.address() as AddressInfo).port;
  const dataDir = await mkdtemp(path.join(tmpdir(), 'berth-cli-'));
  t.teardown(() => rm(dataDir, { recursive: true, force: true }));

  const result = await runCli(['serve', '--host', '127.0.0.1', '--port', String(port), '--data-dir', dataDir]);
  t.is(result.code, 1);
  t.regex(result.stderr, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}: address already in use`));
  const leftover = await promisify(execFile)('pgrep', ['-f', dataDir]).then(
    ({ stdout }) => stdout.trim(),
    () => '',
  );
  t.is(leftover, '', 'no process runs over the data directory');
  await t.throwsAsync(stat(path.join(dataDir, 'redis', 'redis.pid')), undefined, 'redis-server removed its pid file on shutdown');
});
