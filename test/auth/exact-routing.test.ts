import test from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import type { ServedRoute } from '../../server/app.js';
import { loadConfig } from '../../server/config.js';
import { startRegistry, type RunningRegistry } from '../../server/registry.js';
import { ADMIN, basic } from '../helpers/auth-registry.js';
import { run } from '../helpers/exec.js';
import { request } from '../helpers/http-client.js';

/**
 * Every admin route and every /v2/ write route, taken from the routers a started registry serves (so a new
 * route cannot escape these tests), called in its own spelling and in case and trailing-slash variants.
 */

const CLI = fileURLToPath(new URL('../../server/cli.js', import.meta.url));
const WRITE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
const REPOSITORY = 'library/app';
// Open to anyone by design; a new open route has to be added here on purpose.
// The node API is open to the guards here: joining needs a join token, the rest a node credential (deploy-nodes.ts).
// So are the forges' webhooks (signed with the project's secret) and the build workers' API (a worker token).
const OPEN_ROUTES = [
  'GET /token',
  'POST /token',
  'GET /.well-known/jwks.json',
  'GET /livez',
  'GET /readyz',
  'GET /metrics',
  'POST /deploy/v1/join',
  'POST /deploy/v1/node/heartbeat',
  'GET /deploy/v1/node/assignments',
  'PUT /deploy/v1/node/reports',
  'POST /deploy/v1/node/pull-token',
  'GET /deploy/v1/node/log-requests',
  'POST /deploy/v1/node/logs/some-id',
  'POST /builds/v1/hooks/some-project',
  'POST /builds/v1/worker/claim',
  'POST /builds/v1/worker/jobs/some-id/lease',
  'POST /builds/v1/worker/jobs/some-id/source',
  'POST /builds/v1/worker/jobs/some-id/log',
  'POST /builds/v1/worker/jobs/some-id/push-token',
  'POST /builds/v1/worker/jobs/some-id/finish',
];

interface Started {
  registry: RunningRegistry;
  url: string;
  dataDir: string;
}

let withAuth: Started;
let readOnly: Started;

async function start(overrides: Record<string, unknown>): Promise<Started> {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'berth-routing-'));
  const settings = { dataDir, 'http.host': '127.0.0.1', 'http.port': 0, 'gc.adminApi': true, ...overrides };
  const config = loadConfig({
    env: {},
    flags: Object.fromEntries(Object.entries(settings).map(([key, value]) => [key, { flag: key, value }])),
  });
  const registry = await startRegistry(config, pino({ level: 'silent' }));
  return { registry, url: `http://127.0.0.1:${registry.port}`, dataDir };
}

test.before(async () => {
  [withAuth, readOnly] = await Promise.all([start({ 'auth.enabled': true }), start({ 'maintenance.readOnly': true })]);
  await run(process.execPath, [CLI, 'user', 'add', ADMIN.username, '--admin', '--data-dir', withAuth.dataDir], { input: ADMIN.password });
});

test.after.always(async () => {
  for (const started of [withAuth, readOnly]) {
    if (!started) continue;
    await started.registry.close();
    await rm(started.dataDir, { recursive: true, force: true });
  }
});

interface Call {
  method: string;
  path: string;
}

/** Each route once per method (HEAD goes with GET), with its parameters filled in. */
function calls(routes: ServedRoute[], keep: (method: string, route: ServedRoute) => boolean): Call[] {
  return routes.flatMap((route) =>
    route.methods.filter((method) => method !== 'HEAD' && keep(method, route)).map((method) => ({ method, path: concrete(route.path) })),
  );
}

function concrete(template: string): string {
  return template
    .replace('*name', REPOSITORY)
    .replace(/:(\w+)/g, (_match, name: string) => (name === 'digest' ? `sha256:${'a'.repeat(64)}` : `some-${name}`));
}

const adminCalls = (started: Started) => calls(started.registry.routes, (_method, route) => route.guard === 'admin');
const writeCalls = (started: Started) =>
  calls(started.registry.routes, (method, route) => route.guard === 'registry' && WRITE_METHODS.has(method));

/** The path spelled otherwise: case changes of its fixed segments, a trailing slash added or removed. None of them is a route. */
function variants(call: Call, served: Call[]): Call[] {
  const segments = call.path.split('/');
  const fixed = (index: number) =>
    index > 0 &&
    !segments[index]!.startsWith('some-') &&
    !REPOSITORY.split('/').includes(segments[index]!) &&
    !segments[index]!.startsWith('sha256:');
  const respell = (change: (segment: string, index: number) => string) =>
    segments.map((segment, index) => (fixed(index) ? change(segment, index) : segment)).join('/');
  const first = segments.findIndex((_segment, index) => fixed(index));
  const capitalized = (segment: string) => segment.charAt(0).toUpperCase() + segment.slice(1);
  const candidates = [
    respell((segment, index) => (index === first ? capitalized(segment) : segment)), // /Admin/, /V2/
    respell((segment, index) => (index === first ? segment.toUpperCase() : segment)), // /ADMIN/
    respell((segment, index) => (index === first ? segment.charAt(0) + segment.slice(1).toUpperCase() : segment)), // /aDMIN/
    respell((segment) => segment.toUpperCase()), // /V2/.../MANIFESTS/...
    respell((segment, index) => (index === first ? segment : capitalized(segment))), // .../Blobs/Uploads/
    call.path.endsWith('/') ? call.path.slice(0, -1) : `${call.path}/`,
  ];
  const known = new Set(served.filter((each) => each.method === call.method).map((each) => each.path));
  return [...new Set(candidates)]
    .filter((candidate) => !known.has(candidate))
    .map((candidate) => ({ method: call.method, path: candidate }));
}

async function send(
  started: Started,
  call: Call,
  headers: Record<string, string> = {},
): Promise<{ status: number; code?: string; text: string }> {
  const response = await request(started.url, call.path, { method: call.method, headers });
  const text = await response.text();
  let code: string | undefined;
  try {
    code = (JSON.parse(text) as { errors?: Array<{ code: string }> }).errors?.[0]?.code;
  } catch {
    code = undefined;
  }
  return { status: response.status, code, text };
}

function allCalls(started: Started): Call[] {
  return calls(started.registry.routes, () => true);
}

test('the route list covers the admin API, the /v2/ writes and only the expected open routes', (t) => {
  const routes = withAuth.registry.routes;
  const admin = adminCalls(withAuth).map((call) => `${call.method} ${call.path}`);
  for (const expected of [
    'GET /admin/v1/users',
    'PUT /admin/v1/users/some-account',
    'GET /admin/v1/maintenance',
    'PUT /admin/v1/maintenance',
    'POST /admin/v1/gc',
    'GET /admin/v1/webhooks',
  ]) {
    t.true(admin.includes(expected), expected);
  }
  t.true(writeCalls(withAuth).some((call) => call.method === 'PUT' && call.path === `/v2/${REPOSITORY}/manifests/some-reference`));
  t.true(writeCalls(withAuth).some((call) => call.method === 'POST' && call.path === `/v2/${REPOSITORY}/blobs/uploads/`));
  for (const route of routes) {
    if (route.path.startsWith('/admin')) t.is(route.guard, 'admin', `${route.path} is guarded as admin`);
    if (route.path.startsWith('/v2')) t.is(route.guard, 'registry', `${route.path} is a registry route`);
  }
  const open = calls(routes, (_method, route) => route.guard === 'open').map((call) => `${call.method} ${call.path}`);
  t.deepEqual(open.sort(), [...OPEN_ROUTES].sort());
});

test('without credentials every admin route and every /v2/ write answers 401, and nothing changes', async (t) => {
  for (const call of [...adminCalls(withAuth), ...writeCalls(withAuth)]) {
    const answer = await send(withAuth, call);
    t.is(answer.status, 401, `${call.method} ${call.path}: ${answer.text}`);
    t.is(answer.code, 'UNAUTHORIZED', `${call.method} ${call.path}`);
  }
  const users = await request(withAuth.url, '/admin/v1/users', { headers: { Authorization: basic(ADMIN) } });
  t.deepEqual(
    ((await users.json()) as { users: Array<{ name: string }> }).users.map((user) => user.name),
    [ADMIN.username],
  );
});

test('every case or trailing-slash variant of an admin route or a /v2/ write is 404 UNSUPPORTED, anonymous or as admin', async (t) => {
  const served = allCalls(withAuth);
  const targets = [...adminCalls(withAuth), ...writeCalls(withAuth)].flatMap((call) => variants(call, served));
  t.true(targets.some((call) => call.path === '/Admin/v1/users'));
  t.true(targets.some((call) => call.path === '/aDMIN/v1/maintenance'));
  t.true(targets.some((call) => call.path === `/V2/${REPOSITORY}/blobs/uploads/`));
  t.true(targets.some((call) => call.path === `/v2/${REPOSITORY}/Blobs/Uploads/`));
  t.true(targets.some((call) => call.path === `/V2/${REPOSITORY}/MANIFESTS/some-reference`));
  for (const call of targets) {
    for (const headers of [{}, { Authorization: basic(ADMIN) }] as Array<Record<string, string>>) {
      const answer = await send(withAuth, call, headers);
      t.is(answer.status, 404, `${call.method} ${call.path}: ${answer.text}`);
      t.is(answer.code, 'UNSUPPORTED', `${call.method} ${call.path}`);
    }
  }
  const mallory = await send(withAuth, { method: 'PUT', path: '/Admin/v1/users/mallory' }, { 'Content-Type': 'application/json' });
  t.is(mallory.status, 404);
});

test('with admin credentials every admin route is answered by its handler', async (t) => {
  for (const call of adminCalls(withAuth)) {
    const answer = await send(withAuth, call, { Authorization: basic(ADMIN), 'Content-Type': 'application/json' });
    t.false([401, 403].includes(answer.status), `${call.method} ${call.path}: ${answer.text}`);
    t.false(answer.status === 404 && answer.code === 'UNSUPPORTED', `${call.method} ${call.path} is served: ${answer.text}`);
    t.true(answer.status < 500, `${call.method} ${call.path}: ${answer.text}`);
  }
});

test('with a push token every /v2/ write is answered by its handler', async (t) => {
  const issued = await request(withAuth.url, `/token?service=berth&scope=repository:${REPOSITORY}:pull,push,delete`, {
    headers: { Authorization: basic(ADMIN) },
  });
  const { token } = (await issued.json()) as { token: string };
  for (const call of writeCalls(withAuth)) {
    const answer = await send(withAuth, call, { Authorization: `Bearer ${token}` });
    t.false([401, 403].includes(answer.status), `${call.method} ${call.path}: ${answer.text}`);
    t.false(answer.status === 404 && answer.code === 'UNSUPPORTED', `${call.method} ${call.path} is served: ${answer.text}`);
    t.true(answer.status < 500, `${call.method} ${call.path}: ${answer.text}`);
  }
});

test('in read-only mode every /v2/ write answers 405 and every variant of it 404', async (t) => {
  const served = allCalls(readOnly);
  for (const call of writeCalls(readOnly)) {
    const answer = await send(readOnly, call);
    t.is(answer.status, 405, `${call.method} ${call.path}: ${answer.text}`);
    t.regex(answer.text, /read-only mode/, `${call.method} ${call.path}`);
    for (const variant of variants(call, served)) {
      const refused = await send(readOnly, variant);
      t.is(refused.status, 404, `${variant.method} ${variant.path}: ${refused.text}`);
      t.is(refused.code, 'UNSUPPORTED', `${variant.method} ${variant.path}`);
    }
  }
  t.is((await request(readOnly.url, `/v2/${REPOSITORY}/tags/list`)).status, 404, 'reads go on (an unknown repository)');
});
