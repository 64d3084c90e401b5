import test from 'ava';
import { createHmac, createPrivateKey, createPublicKey, generateKeyPairSync, type JsonWebKey } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import jwt from 'jsonwebtoken';
import { AuthRegistry, pushImageWithToken, type Credentials, type TokenResponse } from '../helpers/auth-registry.js';
import { request } from '../helpers/http-client.js';
import { RegistryProcess } from '../helpers/registry-process.js';

// A key rotation as an operator does it: a registry signing with its generated ES256 key hands out tokens;
// then the key file is moved away and listed under auth.token.previousKeys, the algorithm becomes RS256,
// and on restart a new RSA key is generated. Tokens signed before the rotation must keep working.
let registry: AuthRegistry;
let workDir: string;
let alice: Credentials;
let retiredKid: string;
let retiredPem: string;
let before: { access: string; refresh: string; manifestDigest: string };

const GENERATED_KEY = path.join('auth', 'token-signing-key.pem');
const TEAM_A_APP_PULL = [{ type: 'repository', name: 'team-a/app', actions: ['pull'] }];

function decode(token: string): { header: jwt.JwtHeader; payload: jwt.JwtPayload } {
  return jwt.decode(token, { complete: true }) as { header: jwt.JwtHeader; payload: jwt.JwtPayload };
}

function postToken(form: Record<string, string>): Promise<Response> {
  return request(registry.url, '/token', {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(form).toString(),
  });
}

function pull(token: string): Promise<Response> {
  return request(registry.url, '/v2/team-a/app/manifests/v1', { headers: { Authorization: `Bearer ${token}` } });
}

async function jwks(): Promise<JsonWebKey[]> {
  return ((await (await request(registry.url, '/.well-known/jwks.json')).json()) as { keys: JsonWebKey[] }).keys;
}

test.before(async () => {
  workDir = await mkdtemp(path.join(tmpdir(), 'berth-auth-keys-'));
  const dataDir = path.join(workDir, 'data');
  await mkdir(dataDir);

  registry = await AuthRegistry.start({ dataDir });
  alice = await registry.addUser('alice', 'alice-password-1', { groups: ['team-a'] });
  await registry.grant('group:team-a', 'team-a/**', ['pull', 'push']);
  const { manifest } = await pushImageWithToken(
    registry.url,
    await registry.token(['repository:team-a/app:pull,push'], alice),
    'team-a/app',
    'v1',
  );
  const login = await postToken({
    grant_type: 'password',
    username: alice.username,
    password: alice.password,
    service: 'berth',
    client_id: 'test',
    access_type: 'offline',
  });
  before = {
    access: await registry.token(['repository:team-a/app:pull'], alice),
    refresh: ((await login.json()) as TokenResponse).refresh_token!,
    manifestDigest: manifest.digest,
  };
  retiredKid = decode(before.access).header.kid!;
  await registry.destroy();

  // The rotation: the old key's public half is kept (the private one could be destroyed), a new key is generated.
  const retiredPrivate = path.join(dataDir, GENERATED_KEY);
  retiredPem = await readFile(retiredPrivate, 'utf8');
  const retiredPublic = path.join(workDir, 'retired-es256.pub.pem');
  await writeFile(retiredPublic, createPublicKey(retiredPem).export({ type: 'spki', format: 'pem' }));
  await rename(retiredPrivate, path.join(workDir, 'retired-es256.pem'));
  const config = path.join(workDir, 'berth.yml');
  await writeFile(config, ['auth:', '  token:', '    algorithm: RS256', '    previousKeys:', `      - ${retiredPublic}`, ''].join('\n'));
  registry = await AuthRegistry.start({ dataDir, args: ['--config', config] });
});

test.after.always(async () => {
  await registry?.destroy();
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

test('with RS256 configured, tokens are RS256 JWTs whose kid names the RSA key of the JWKS, and pushes and pulls work with them', async (t) => {
  const token = await registry.token(['repository:team-a/rsa:pull,push'], alice);
  const { header } = decode(token);
  t.is(header.alg, 'RS256');
  const rsa = (await jwks()).find((key) => key.kid === header.kid);
  t.like(rsa, { kty: 'RSA', alg: 'RS256', use: 'sig' });
  t.notThrows(
    () => jwt.verify(token, createPublicKey({ key: rsa!, format: 'jwk' }), { algorithms: ['RS256'] }),
    'the JWKS key verifies it',
  );
  t.is(
    createPrivateKey(await readFile(path.join(registry.process.dataDir, GENERATED_KEY), 'utf8')).asymmetricKeyDetails?.modulusLength,
    3072,
  );

  const { manifest } = await pushImageWithToken(registry.url, token, 'team-a/rsa', 'v1');
  const pulled = await request(registry.url, '/v2/team-a/rsa/manifests/v1', { headers: { Authorization: `Bearer ${token}` } });
  t.is(pulled.status, 200);
  t.is(pulled.headers.get('docker-content-digest'), manifest.digest);
});

test('the JWKS lists the current key and the retired one', async (t) => {
  const keys = await jwks();
  t.deepEqual(keys.map((key) => key.alg).sort(), ['ES256', 'RS256']);
  t.like(
    keys.find((key) => key.kid === retiredKid),
    { kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig' },
  );
  t.false(JSON.stringify(keys).includes('"d"'), 'no private parts');
});

test('tokens signed with the retired key before the rotation are still accepted, and its refresh token buys new-key tokens', async (t) => {
  const pulled = await pull(before.access);
  t.is(pulled.status, 200);
  t.is(pulled.headers.get('docker-content-digest'), before.manifestDigest);

  const refreshed = await postToken({
    grant_type: 'refresh_token',
    refresh_token: before.refresh,
    service: 'berth',
    client_id: 'test',
    scope: 'repository:team-a/app:pull',
  });
  t.is(refreshed.status, 200);
  const { token } = (await refreshed.json()) as TokenResponse;
  t.is(decode(token).header.alg, 'RS256', 'new tokens are signed with the current key only');
  t.not(decode(token).header.kid, retiredKid);
  t.deepEqual(decode(token).payload.access, TEAM_A_APP_PULL);
});

test('tokens from an unknown key are rejected, as are forgeries naming the retired key', async (t) => {
  const claims = { sub: 'alice', access: TEAM_A_APP_PULL, rev: decode(before.access).payload.rev as string };
  const options = { issuer: 'berth', audience: 'berth', expiresIn: 60 };
  const stranger = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  const strangerRsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  const retiredPublicPem = createPublicKey(retiredPem).export({ type: 'spki', format: 'pem' }) as string;
  const rejected: Record<string, string> = {
    'unknown kid': jwt.sign(claims, stranger, { ...options, algorithm: 'ES256', keyid: 'no-such-key' }),
    'no kid': jwt.sign(claims, stranger, { ...options, algorithm: 'ES256' }),
    "another key with the retired key's kid": jwt.sign(claims, stranger, { ...options, algorithm: 'ES256', keyid: retiredKid }),
    "an RSA key with the retired key's kid": jwt.sign(claims, strangerRsa, { ...options, algorithm: 'RS256', keyid: retiredKid }),
    'HS256 with the retired public key as secret': hs256(claims, retiredKid, retiredPublicPem),
  };
  for (const [what, token] of Object.entries(rejected)) {
    const response = await pull(token);
    t.is(response.status, 401, what);
    t.regex(response.headers.get('www-authenticate') ?? '', /error="invalid_token"/, what);
  }
  // The retired private key itself still makes acceptable tokens: a retired key is trusted until it is removed.
  t.is((await pull(jwt.sign(claims, createPrivateKey(retiredPem), { ...options, algorithm: 'ES256', keyid: retiredKid }))).status, 200);
});

test('a previous key that cannot be read stops the start with a message naming the setting and what it must be', async (t) => {
  const config = path.join(workDir, 'bad.yml');
  await writeFile(
    config,
    ['auth:', '  enabled: true', '  token:', '    previousKeys:', `      - ${path.join(workDir, 'missing.pem')}`, ''].join('\n'),
  );
  const dataDir = path.join(workDir, 'bad-data');
  await mkdir(dataDir);
  const error = await t.throwsAsync(RegistryProcess.start({ dataDir, args: ['--config', config] }));
  t.regex(error!.message, /code 2/);
  t.regex(
    error!.message,
    /auth\.token\.previousKeys\[0\]: cannot use .*missing\.pem \(no such file\); it must be the PEM public key \(or private key\) of a retired RSA or P-256 signing key/,
  );
});

/** Made by hand: jsonwebtoken itself refuses to use a public key as an HMAC secret. */
function hs256(claims: object, kid: string, secret: string): string {
  const encode = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const signed = `${encode({ alg: 'HS256', typ: 'JWT', kid })}.${encode({ ...claims, iss: 'berth', aud: 'berth', iat: now, exp: now + 60 })}`;
  return `${signed}.${createHmac('sha256', secret).update(signed).digest('base64url')}`;
}
