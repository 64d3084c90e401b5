import test from 'ava';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { AGENT_ENV, ConfigError, REGISTRY_ENV, loadConfig } from '../../platform/config.js';
import { resolveConfig } from '../../runtime-agent/config/agent-config.js';

// A registry-shaped schema: strict, nested, with defaults, as server/config.ts is.
const registrySchema = z
  .object({
    dataDir: z.string().default('./data'),
    http: z
      .object({ host: z.string().default('0.0.0.0'), port: z.number().int().max(65535).default(5000) })
      .strict()
      .prefault({}),
  })
  .strict();

test('the registry convention maps BERTH_A__B_C to a.bC and leaves BERTH_AGENT_* to the agent', (t) => {
  const config = loadConfig(registrySchema, REGISTRY_ENV, {
    env: { BERTH_HTTP__PORT: '5001', BERTH_DATA_DIR: '/srv/berth', BERTH_AGENT_DATA_DIR: '/x', BERTH_AGENT_SOCKET: '/x/s' },
  });
  t.deepEqual(config, { dataDir: '/srv/berth', http: { host: '0.0.0.0', port: 5001 } });
});

test('the agent convention reads BERTH_AGENT_* and leaves the registry variables alone', (t) => {
  const config = resolveConfig(
    {},
    { BERTH_AGENT_DATA_DIR: '/x', BERTH_AGENT_MAX_CONCURRENT_DOWNLOADS: '5', BERTH_HTTP__PORT: '5001', BERTH_CONFIG: '/nonexistent.yml' },
  );
  t.is(config.dataDir, '/x');
  t.is(config.socketPath, '/x/agent.sock');
  t.is(config.maxConcurrentDownloads, 5);
});

test('every variable the README documents for the agent still configures it', (t) => {
  const config = resolveConfig(
    {},
    {
      BERTH_AGENT_DATA_DIR: '/d',
      BERTH_AGENT_SOCKET: '/run/a.sock',
      BERTH_AGENT_INSECURE_REGISTRIES: 'r1:5000, r2',
      BERTH_AGENT_MAX_CONCURRENT_DOWNLOADS: '4',
      BERTH_AGENT_STALL_TIMEOUT: '12',
      BERTH_AGENT_KEEP_SETID: 'true',
      BERTH_AGENT_PLATFORM: 'linux/arm64/v8',
      BERTH_AGENT_RUNTIME: 'crun',
      BERTH_AGENT_BRIDGE_NAME: 'br9',
      BERTH_AGENT_BRIDGE_SUBNET: '10.9.0.0/16',
      BERTH_AGENT_LOG_MAX_SIZE: '1m',
      BERTH_AGENT_LOG_MAX_FILES: '7',
      BERTH_AGENT_RESTART_DELAY_MS: '250',
      BERTH_AGENT_JOIN: 'https://registry.example:5000',
      BERTH_AGENT_TOKEN: 'berth-join.a.b',
      BERTH_AGENT_LABEL: 'zone=a, disk=ssd',
      BERTH_AGENT_NODE_NAME: 'web-1',
      BERTH_AGENT_ADVERTISE_ADDRESS: '10.0.0.7',
      BERTH_AGENT_BUILD_WORKER: 'true',
      BERTH_AGENT_REGISTRY: 'https://registry.example:5000',
      BERTH_AGENT_WORKER_TOKEN: 'berth-worker.a.b',
      BERTH_AGENT_WORKER_NAME: 'builder-1',
      BERTH_AGENT_GIT_MIRROR_MAX_AGE: '30m',
      BERTH_AGENT_GIT_MIRROR_MAX_SIZE: '500m',
    },
  );
  t.deepEqual(config, {
    dataDir: '/d',
    socketPath: '/run/a.sock',
    insecureRegistries: ['r1:5000', 'r2'],
    maxConcurrentDownloads: 4,
    stallTimeoutSeconds: 12,
    keepSetid: true,
    platform: { os: 'linux', architecture: 'arm64', variant: 'v8' },
    runtime: 'crun',
    bridgeName: 'br9',
    bridgeSubnet: '10.9.0.0/16',
    logMaxSizeBytes: 1024 * 1024,
    logMaxFiles: 7,
    restartDelayMs: 250,
    node: {
      joinUrl: 'https://registry.example:5000',
      token: 'berth-join.a.b',
      labels: { zone: 'a', disk: 'ssd' },
      name: 'web-1',
      advertiseAddress: '10.0.0.7',
    },
    buildWorker: {
      registry: 'https://registry.example:5000',
      token: 'berth-worker.a.b',
      name: 'builder-1',
      gitMirrors: { maxAgeMs: 30 * 60_000, maxBytes: 500 * 1024 ** 2 },
    },
  });
});

test('flags win over the environment', (t) => {
  const config = resolveConfig({ dataDir: '/flag', runtime: 'runc' }, { BERTH_AGENT_DATA_DIR: '/env', BERTH_AGENT_RUNTIME: 'crun' });
  t.is(config.dataDir, '/flag');
  t.is(config.runtime, 'runc');
});

test('an invalid value names its key and the variable that set it', (t) => {
  const error = t.throws(() => loadConfig(registrySchema, REGISTRY_ENV, { env: { BERTH_HTTP__PORT: '70000' } }), {
    instanceOf: ConfigError,
  });
  t.regex(error?.message ?? '', /http\.port: .*\(set by BERTH_HTTP__PORT\)/);
});

test('an unknown variable under a program prefix names the variable', (t) => {
  const error = t.throws(() => loadConfig(registrySchema, REGISTRY_ENV, { env: { BERTH_HTTP__PROT: '1' } }), { instanceOf: ConfigError });
  t.regex(error?.message ?? '', /http: Unrecognized key: "prot" \(set by BERTH_HTTP__PROT\)/);
});

test('an invalid flag names the flag', (t) => {
  const error = t.throws(() => resolveConfig({ logMaxSize: 'huge' }, {}), { instanceOf: ConfigError });
  t.regex(error?.message ?? '', /logMaxSize: .*\(set by --log-max-size\)/);
});

test('an invalid agent variable names the variable', (t) => {
  const error = t.throws(() => resolveConfig({}, { BERTH_AGENT_BRIDGE_SUBNET: 'ten' }), { instanceOf: ConfigError });
  t.regex(error?.message ?? '', /bridgeSubnet: an IPv4 CIDR .*\(set by BERTH_AGENT_BRIDGE_SUBNET\)/);
});

test('a value from the YAML file is overridden by the environment; an invalid one names the file', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'berth-config-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'berth.yml');
  await writeFile(file, 'dataDir: /from-file\nhttp:\n  port: 6000\n');
  t.deepEqual(loadConfig(registrySchema, REGISTRY_ENV, { env: { BERTH_CONFIG: file, BERTH_HTTP__PORT: '6001' } }), {
    dataDir: '/from-file',
    http: { host: '0.0.0.0', port: 6001 },
  });
  await writeFile(file, 'http:\n  port: many\n');
  const error = t.throws(() => loadConfig(registrySchema, REGISTRY_ENV, { file, env: {} }), { instanceOf: ConfigError });
  t.regex(error?.message ?? '', new RegExp(`http\\.port: .*\\(in ${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}\\)`));
});

test('the agent reads its own file variable, not the registry one', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'berth-config-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'agent.yml');
  await writeFile(file, 'runtime: crun\n');
  t.is(resolveConfig({}, { [AGENT_ENV.fileVariable]: file }).runtime, 'crun');
});

test('the agent joins as a node with --join, --token and --label k=v; a node setting without --join or a bad one is refused by name', (t) => {
  const node = resolveConfig(
    { join: 'http://10.0.0.1:5000/', token: 'berth-join.a.b', label: ['zone=a', 'disk=ssd'], nodeName: 'web-1' },
    { BERTH_AGENT_ADVERTISE_ADDRESS: '10.0.0.7' },
  ).node;
  t.deepEqual(node, {
    joinUrl: 'http://10.0.0.1:5000',
    token: 'berth-join.a.b',
    labels: { zone: 'a', disk: 'ssd' },
    name: 'web-1',
    advertiseAddress: '10.0.0.7',
  });
  t.is(resolveConfig({}, {}).node, null, 'no --join: not a node');
  const refused = (flags: Parameters<typeof resolveConfig>[0]) =>
    t.throws(() => resolveConfig(flags, {}), { instanceOf: ConfigError })?.message ?? '';
  t.regex(refused({ label: ['zone=a'] }), /label: only meaningful with --join/);
  t.regex(refused({ join: 'http://10.0.0.1:5000' }), /token: a join token .* is required with --join/);
  t.regex(refused({ join: 'ftp://10.0.0.1', token: 't' }), /join: an http or https URL/);
  t.regex(refused({ join: 'http://10.0.0.1', token: 't', label: ['zone'] }), /label: "zone" is not KEY=VALUE/);
});

test('a build worker takes --registry and --worker-token beside a node join; --build-worker without them is refused by name', (t) => {
  const config = resolveConfig(
    {
      buildWorker: true,
      registry: 'http://10.0.0.1:5000',
      workerToken: 'berth-worker.a.b',
      join: 'http://10.0.0.1:5000',
      token: 'berth-join.c.d',
    },
    {},
  );
  t.deepEqual(config.buildWorker, {
    registry: 'http://10.0.0.1:5000',
    token: 'berth-worker.a.b',
    name: hostname(),
    gitMirrors: { maxAgeMs: 48 * 3_600_000, maxBytes: 2 * 1024 ** 3 },
  });
  t.is(config.node?.token, 'berth-join.c.d', 'the join token and the worker token are two settings');
  t.is(resolveConfig({}, {}).buildWorker, null, 'no --build-worker: no build jobs');
  const error = t.throws(() => resolveConfig({ buildWorker: true, registry: 'http://10.0.0.1:5000' }, {}), { instanceOf: ConfigError });
  t.regex(error?.message ?? '', /buildWorker: --build-worker needs --registry URL and --worker-token T/);
  const worker = { buildWorker: true, registry: 'http://10.0.0.1:5000', workerToken: 't' };
  const refused = (flags: Parameters<typeof resolveConfig>[0]) =>
    t.throws(() => resolveConfig({ ...worker, ...flags }, {}), { instanceOf: ConfigError })?.message ?? '';
  t.regex(
    refused({ gitMirrorMaxAge: '2 days' }),
    /gitMirrorMaxAge: a positive duration such as 48h or 30m \(set by --git-mirror-max-age\)/,
  );
  t.regex(refused({ gitMirrorMaxAge: '0' }), /gitMirrorMaxAge: a positive duration/);
  t.regex(
    refused({ gitMirrorMaxSize: 'lots' }),
    /gitMirrorMaxSize: a size such as 2g or 500m \(0 keeps no mirror\) \(set by --git-mirror-max-size\)/,
  );
  t.is(resolveConfig({ ...worker, gitMirrorMaxSize: '0' }, {}).buildWorker?.gitMirrors.maxBytes, 0, '0: no mirror is kept');
});
