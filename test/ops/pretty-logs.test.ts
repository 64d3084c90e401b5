import test from 'ava';
import { ADMIN, AuthRegistry, basic } from '../helpers/auth-registry.js';
import { eventually } from '../helpers/eventually.js';
import { collectWithCli } from '../helpers/gc.js';
import { request } from '../helpers/http-client.js';
import { RegistryProcess } from '../helpers/registry-process.js';

const ALICE = { username: 'alice', password: 'alice-password-1' };
const WRONG = { username: 'alice', password: 'wrong-password-9' };
// A log line as pino-pretty writes it without a terminal: time, level, message, then the fields, uncoloured.
const HUMAN_LINE = /^\[\d{2}:\d{2}:\d{2}\.\d{3}\] (INFO|WARN|ERROR|DEBUG): \S/;

test('log.format pretty prints one human line per entry and never an Authorization header or a password', async (t) => {
  const registry = await AuthRegistry.start({ env: { BERTH_LOG__FORMAT: 'pretty' } });
  t.teardown(() => registry.destroy());
  await registry.addUser(ALICE.username, ALICE.password);
  await registry.grant(`user:${ALICE.username}`, 'team/**', ['pull']);
  const token = await registry.token(['repository:team/app:pull'], ALICE);
  t.is((await request(registry.url, '/v2/', { headers: { Authorization: `Bearer ${token}` } })).status, 200);
  t.is((await registry.tokenRequest(['repository:team/app:pull'], WRONG)).status, 401);

  // The request line is written when the response is done, just after the client has it.
  const logLines = async () => registry.process.logs.split('\n').filter((line) => line !== '');
  const lines = await eventually(logLines, (current) => current.some((line) => line.includes('GET /token 401')), 5_000);
  t.deepEqual(
    lines.filter((line) => !HUMAN_LINE.test(line)),
    [],
    'every line is a human one (no JSON line, no colour codes when not at a terminal)',
  );
  t.true(lines.some((line) => / INFO: request GET \/v2\/ 200 [\d.]+ms \{.*"requestId":/.test(line)));
  t.true(lines.some((line) => / INFO: request PUT \/admin\/v1\/users\/alice 200 /.test(line)));

  const logs = registry.process.logs;
  t.false(/authorization/i.test(logs), 'no Authorization header');
  for (const credentials of [ADMIN, ALICE, WRONG]) {
    t.false(logs.includes(credentials.password), credentials.password);
    t.false(logs.includes(basic(credentials).slice('Basic '.length)), `Basic credentials of ${credentials.password}`);
  }
  t.false(logs.includes(token.split('.')[2]!), 'the token signature');
  t.false(/eyJ[A-Za-z0-9_-]{10,}/.test(logs), 'nothing that looks like a JWT');
});

test('berth gc with log.format pretty logs human lines on stderr and keeps its JSON report alone on stdout', async (t) => {
  const registry = await RegistryProcess.start();
  t.teardown(() => registry.destroy());
  const result = await collectWithCli(registry, ['--dry-run'], { BERTH_LOG__FORMAT: 'pretty' });
  t.is(result.code, 0, result.stderr);
  t.is(result.report?.dryRun, true);
  const lines = result.stderr.split('\n').filter((line) => line !== '');
  t.true(
    lines.some((line) => / INFO: garbage collection dry run finished/.test(line)),
    result.stderr,
  );
  t.deepEqual(
    lines.filter((line) => !HUMAN_LINE.test(line)),
    [],
  );
});
