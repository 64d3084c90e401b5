import test from 'ava';
import { createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import jwt from 'jsonwebtoken';
import { AuthRegistry, pushImageWithToken } from '../helpers/auth-registry.js';
import { request } from '../helpers/http-client.js';
import { RegistryProcess } from '../helpers/registry-process.js';

// An external token issuer that publishes its JWKS at a URL (a small local HTTP server whose key set the
// tests change, as an issuer rotating its keys would), trusted with a refresh interval of two seconds.
const REFRESH_SECONDS = 2;
let registry: AuthRegistry;
let workDir: string;
let jwksServer: Server;
let fetches = 0;
const keys = new Map<string, KeyObject>([['remote-1', generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey]]);

test.before(async () => {
  workDir = await mkdtemp(path.join(tmpdir(), 'berth-auth-jwks-url-'));
  jwksServer = createServer((_request, response) => {
    fetches++;
    const published = [...keys].map(([kid, key]) => ({ ...createPublicKey(key).export({ format: 'jwk' }), kid, use: 'sig' }));
    response.writeHead(200, { 'Content-Type': 'application/json' });
    response.end(JSON.stringify({ keys: [{ kty: 'oct', k: 'c2VjcmV0', kid: 'symmetric' }, ...published] }));
  });
  await new Promise<void>((resolve) => jwksServer.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/.well-known/jwks.json`;
  const config = path.join(workDir, 'berth.yml');
  await writeFile(
    config,
    ['auth:', '  externalIssuers:', `    - { issuer: remote-auth, jwksUrl: "${url}", jwksRefreshSeconds: ${REFRESH_SECONDS} }`, ''].join(
      '\n',
    ),
  );
  registry = await AuthRegistry.start({ args: ['--config', config] });
});

test.after.always(async () => {
  await registry?.destroy();
  jwksServer?.close();
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

const ACCESS = [{ type: 'repository', name: 'remote/app', actions: ['pull', 'push'] }];

function token(kid: string, key = keys.get(kid)!): string {
  return jwt.sign({ sub: 'remote-user', access: ACCESS }, key, {
    algorithm: 'RS256',
    keyid: kid,
    issuer: 'remote-auth',
    audience: 'berth',
    expiresIn: 60,
  });
}

function tagsList(bearer: string): Promise<Response> {
  return request(registry.url, '/v2/remote/app/tags/list', { headers: { Authorization: `Bearer ${bearer}` } });
}

// Serial: they count the fetches of the one JWKS server.
test.serial(
  'a token signed with a key of the JWKS at the URL is accepted; the JWKS was fetched once, at start, and is cached',
  async (t) => {
    t.is(fetches, 1);
    await t.notThrowsAsync(pushImageWithToken(registry.url, token('remote-1'), 'remote/app', 'v1'));
    t.is((await tagsList(token('remote-1'))).status, 200);
    t.is(fetches, 1, 'no fetch per token');
  },
);

test.serial('a kid the registry does not hold makes it fetch the JWKS again, at most once per jwksRefreshSeconds', async (t) => {
  await sleep(REFRESH_SECONDS * 1000 + 100);
  // The issuer rotates: a new key appears in its JWKS.
  keys.set('remote-2', generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey);
  const statuses = await Promise.all(Array.from({ length: 5 }, async () => (await tagsList(token('remote-2'))).status));
  t.deepEqual(statuses, [200, 200, 200, 200, 200], 'all five wait for the one fetch');
  t.is(fetches, 2);

  // Made-up kids within the interval: refused without asking the issuer again.
  const stranger = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  for (let attempt = 0; attempt < 5; attempt++) {
    const response = await tagsList(token(`made-up-${attempt}`, stranger));
    t.is(response.status, 401);
    t.regex(response.headers.get('www-authenticate') ?? '', /error="invalid_token"/);
  }
  t.is(fetches, 2);
  await sleep(REFRESH_SECONDS * 1000 + 100);
  t.is((await tagsList(token('made-up-again', stranger))).status, 401);
  t.is(fetches, 3, 'one more fetch once the interval has passed');
  t.is((await tagsList(token('symmetric', stranger))).status, 401, 'an oct key in the JWKS is never used');
});

test.serial('a key the issuer withdrew from its JWKS is refused once the registry has fetched it again', async (t) => {
  await sleep(REFRESH_SECONDS * 1000 + 100);
  const withdrawn = keys.get('remote-1')!;
  keys.delete('remote-1');
  keys.set('remote-3', generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey);
  t.is((await tagsList(token('remote-3'))).status, 200, 'fetched for remote-3');
  t.is((await tagsList(token('remote-1', withdrawn))).status, 401);
});

test('an external issuer without keys, or with a JWKS URL that is not http(s), stops the start with a message saying what it needs', async (t) => {
  const config = path.join(workDir, 'bad.yml');
  await writeFile(
    config,
    [
      'auth:',
      '  enabled: true',
      '  externalIssuers:',
      '    - { issuer: keyless }',
      '    - { issuer: ftp-auth, jwksUrl: "ftp://example.com/jwks.json" }',
      '',
    ].join('\n'),
  );
  const error = await t.throwsAsync(
    RegistryProcess.start({ dataDir: await mkdtemp(path.join(workDir, 'data-')), args: ['--config', config] }),
  );
  t.regex(
    error!.message,
    /auth\.externalIssuers\.0: needs its keys: jwks \(a JWKS file\), jwksUrl \(where the issuer publishes its JWKS\) or rootCertBundle/,
  );
  t.regex(error!.message, /auth\.externalIssuers\.1\.jwksUrl: must be an http:\/\/ or https:\/\/ URL/);
});
