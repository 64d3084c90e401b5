import test from 'ava';
import { fileURLToPath } from 'node:url';
import { run } from '../helpers/exec.js';

const LOGGER = fileURLToPath(new URL('../../platform/logger.js', import.meta.url));

async function logLine(format: 'json' | 'pretty', entry: Record<string, unknown>): Promise<string> {
  const script = `import { createLogger } from ${JSON.stringify(LOGGER)};
createLogger({ level: 'info', format: ${JSON.stringify(format)}, service: 'test' }).info(${JSON.stringify(entry)}, 'hello');`;
  const result = await run(process.execPath, ['--input-type=module', '-e', script], { timeoutMs: 20_000 });
  return result.stdout;
}

const SECRETS = {
  password: 'hunter2-top',
  token: 'tok-top-level',
  req: { headers: { authorization: 'Bearer abc.def.ghi', cookie: 'session=s3cr3t' } },
  account: { password: 'hunter2-nested', secret: 'shh-nested', token: 'tok-nested' },
  s3: { secretAccessKey: 'AKIA-secret', sessionToken: 'sts-token' },
};

for (const format of ['json', 'pretty'] as const) {
  test(`${format} logs never contain credentials, tokens or secrets`, async (t) => {
    const line = await logLine(format, { ...SECRETS, repository: 'team/app' });
    t.true(line.includes('team/app'), line);
    t.true(line.includes('[redacted]'), line);
    for (const secret of ['hunter2', 'tok-', 'abc.def.ghi', 's3cr3t', 'shh-nested', 'AKIA-secret', 'sts-token']) {
      t.false(line.includes(secret), `${secret} leaked: ${line}`);
    }
  });
}

test('json lines carry the service name and an ISO time', async (t) => {
  const entry = JSON.parse(await logLine('json', {})) as { service: string; time: string; msg: string };
  t.is(entry.service, 'test');
  t.is(entry.msg, 'hello');
  t.regex(entry.time, /^\d{4}-\d\d-\d\dT/);
});
