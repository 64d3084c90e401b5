import test from 'ava';
import { createPrivateKey, generateKeyPairSync, X509Certificate, type KeyObject } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import jwt from 'jsonwebtoken';
import { AuthRegistry, pushImageWithToken } from '../helpers/auth-registry.js';
import { run } from '../helpers/exec.js';
import { request } from '../helpers/http-client.js';

// Two token servers Berth is told to trust, as registry:2 would be: one publishing a JWKS, one with a
// certificate bundle (its tokens carry the signing certificate in x5c).
let registry: AuthRegistry;
let workDir: string;
const jwksIssuer = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
let certIssuer: { key: KeyObject; certificate: X509Certificate };
let strangerCert: { key: KeyObject; certificate: X509Certificate };

async function selfSignedCertificate(name: string): Promise<{ key: KeyObject; certificate: X509Certificate }> {
  const keyFile = path.join(workDir, `${name}.key`);
  const certFile = path.join(workDir, `${name}.crt`);
  await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    keyFile,
    '-out',
    certFile,
    '-days',
    '2',
    '-subj',
    `/CN=${name}`,
  ]);
  return { key: createPrivateKey(await readFile(keyFile)), certificate: new X509Certificate(await readFile(certFile)) };
}

test.before(async () => {
  workDir = await mkdtemp(path.join(tmpdir(), 'berth-auth-external-'));
  certIssuer = await selfSignedCertificate('corp-token-server');
  strangerCert = await selfSignedCertificate('stranger');
  const jwks = path.join(workDir, 'jwks.json');
  await writeFile(jwks, JSON.stringify({ keys: [{ ...jwksIssuer.export({ format: 'jwk' }), kid: 'corp-1' }] }));
  const bundle = path.join(workDir, 'roots.pem');
  await writeFile(bundle, certIssuer.certificate.toString());
  const config = path.join(workDir, 'berth.yml');
  await writeFile(
    config,
    [
      'auth:',
      '  externalIssuers:',
      `    - { issuer: corp-auth, jwks: ${jwks} }`,
      `    - { issuer: legacy-auth, audience: registry.example.com, rootCertBundle: ${bundle} }`,
      '',
    ].join('\n'),
  );
  registry = await AuthRegistry.start({ args: ['--config', config] });
});

test.after.always(async () => {
  await registry?.destroy();
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

const PUSH_ACCESS = [{ type: 'repository', name: 'ext/app', actions: ['pull', 'push'] }];

function jwksToken(overrides: jwt.SignOptions = {}): string {
  return jwt.sign({ sub: 'corp-user', access: PUSH_ACCESS }, jwksIssuer, {
    algorithm: 'RS256',
    keyid: 'corp-1',
    issuer: 'corp-auth',
    audience: 'berth',
    expiresIn: 60,
    ...overrides,
  });
}

function certToken(signer: { key: KeyObject; certificate: X509Certificate }): string {
  return jwt.sign({ sub: 'legacy-user', access: PUSH_ACCESS }, signer.key, {
    algorithm: 'ES256',
    issuer: 'legacy-auth',
    audience: 'registry.example.com',
    expiresIn: 60,
    header: { alg: 'ES256', x5c: [signer.certificate.raw.toString('base64')] },
  });
}

function pull(token: string): Promise<Response> {
  return request(registry.url, '/v2/ext/app/tags/list', { headers: { Authorization: `Bearer ${token}` } });
}

test('a token from an issuer with a configured JWKS is accepted, its access claim honoured', async (t) => {
  await t.notThrowsAsync(pushImageWithToken(registry.url, jwksToken(), 'ext/app', 'jwks'));
});

test('a token from an issuer with a certificate bundle is accepted when signed by a bundled certificate', async (t) => {
  await t.notThrowsAsync(pushImageWithToken(registry.url, certToken(certIssuer), 'ext/app', 'cert'));
});

test("an external issuer's token is rejected for another audience, another key or a certificate outside the bundle", async (t) => {
  const otherKey = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  const rejected = {
    'wrong audience': jwksToken({ audience: 'someone-else' }),
    'unknown kid': jwksToken({ keyid: 'corp-2' }),
    'right kid, other key': jwt.sign({ sub: 'x', access: PUSH_ACCESS }, otherKey, {
      algorithm: 'RS256',
      keyid: 'corp-1',
      issuer: 'corp-auth',
      audience: 'berth',
      expiresIn: 60,
    }),
    'certificate not in the bundle': certToken(strangerCert),
    'unknown issuer': jwksToken({ issuer: 'nobody' }),
  };
  for (const [what, token] of Object.entries(rejected)) {
    const response = await pull(token);
    t.is(response.status, 401, what);
    t.regex(response.headers.get('www-authenticate') ?? '', /error="invalid_token"/, what);
  }
});
