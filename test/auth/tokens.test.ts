import test from 'ava';
import { createHmac, createPrivateKey, createPublicKey, generateKeyPairSync, type JsonWebKey } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import jwt from 'jsonwebtoken';
import { AuthRegistry, basic, type Credentials, type TokenResponse } from '../helpers/auth-registry.js';
import { request } from '../helpers/http-client.js';

let registry: AuthRegistry;
let alice: Credentials;

test.before(async () => {
  registry = await AuthRegistry.start();
  alice = await registry.addUser('alice', 'alice-password-1', { groups: ['team-a'] });
  await registry.grant('group:team-a', 'team-a/**', ['pull', 'push']);
});

test.after.always(async () => {
  await registry?.destroy();
});

function decode(token: string): { header: jwt.JwtHeader; payload: jwt.JwtPayload } {
  return jwt.decode(token, { complete: true }) as { header: jwt.JwtHeader; payload: jwt.JwtPayload };
}

async function signingKeyPem(): Promise<string> {
  return readFile(path.join(registry.process.dataDir, 'auth', 'token-signing-key.pem'), 'utf8');
}

/** A manifest GET on team-a/app with this Authorization header: what the registry makes of the token. */
function pullWith(authorization: string): Promise<Response> {
  return request(registry.url, '/v2/team-a/app/manifests/latest', { headers: { Authorization: authorization } });
}

const TEAM_A_PULL = [{ type: 'repository', name: 'team-a/app', actions: ['pull'] }];

test('a token is an ES256 JWT whose kid names the key in the JWKS, with the Docker claims and a 5-minute life', async (t) => {
  const response = await registry.tokenRequest(['repository:team-a/app:pull'], alice);
  t.is(response.status, 200);
  t.is(response.headers.get('cache-control'), 'no-store');
  const body = (await response.json()) as TokenResponse;
  t.is(body.access_token, body.token);
  t.is(body.expires_in, 300);
  t.true(Math.abs(Date.parse(body.issued_at) - Date.now()) < 10_000);

  const jwks = (await (await request(registry.url, '/.well-known/jwks.json')).json()) as { keys: JsonWebKey[] };
  t.is(jwks.keys.length, 1);
  const { header, payload } = decode(body.token);
  t.is(header.alg, 'ES256');
  t.is(header.kid, jwks.keys[0]!.kid as string);
  t.like(payload, { iss: 'berth', sub: 'alice', aud: 'berth', access: TEAM_A_PULL });
  t.is(payload.exp! - payload.iat!, 300);
  t.is(payload.nbf, payload.iat);
  t.regex(String(payload.jti), /^[0-9a-f-]{36}$/);
  t.notThrows(
    () => jwt.verify(body.token, createPublicKey({ key: jwks.keys[0]!, format: 'jwk' }), { algorithms: ['ES256'] }),
    'the JWKS key verifies it',
  );
});

test('asking for more than is allowed grants the allowed part and is not an error', async (t) => {
  const token = await registry.token(
    ['repository:team-a/app:pull,push,delete', 'repository:team-b/app:pull', 'registry:catalog:*', 'nonsense'],
    alice,
  );
  t.deepEqual(decode(token).payload.access, [{ type: 'repository', name: 'team-a/app', actions: ['pull', 'push'] }]);
});

test('an anonymous token request is answered, with no access to a private repository', async (t) => {
  const token = await registry.token(['repository:team-a/app:pull']);
  t.like(decode(token).payload, { sub: '', access: [] });
});

test('a wrong password gets 401 from the token endpoint', async (t) => {
  const response = await registry.tokenRequest(['repository:team-a/app:pull'], { username: 'alice', password: 'wrong-password' });
  t.is(response.status, 401);
  t.is(((await response.json()) as { errors: Array<{ code: string }> }).errors[0]!.code, 'UNAUTHORIZED');
});

test('the OAuth2 password grant with access_type=offline returns a refresh token that later buys tokens for other scopes', async (t) => {
  const post = (form: Record<string, string>) =>
    request(registry.url, '/token', {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(form).toString(),
    });
  const login = await post({
    grant_type: 'password',
    username: 'alice',
    password: 'alice-password-1',
    service: 'berth',
    client_id: 'test',
    access_type: 'offline',
    scope: '',
  });
  t.is(login.status, 200);
  const { refresh_token: refreshToken } = (await login.json()) as TokenResponse;
  t.truthy(refreshToken);

  const refreshed = await post({
    grant_type: 'refresh_token',
    refresh_token: refreshToken!,
    service: 'berth',
    client_id: 'test',
    scope: 'repository:team-a/app:pull',
  });
  t.is(refreshed.status, 200);
  const { token } = (await refreshed.json()) as TokenResponse;
  t.deepEqual(decode(token).payload.access, TEAM_A_PULL);

  t.is((await pullWith(`Bearer ${refreshToken}`)).status, 401, 'a refresh token is not an access token');
  t.is(
    (await post({ grant_type: 'refresh_token', refresh_token: token, service: 'berth' })).status,
    401,
    'an access token is not a refresh token',
  );
});

test('tokens that are expired, forged, tampered with or for someone else are rejected with error="invalid_token"', async (t) => {
  const pem = await signingKeyPem();
  const key = createPrivateKey(pem);
  const issued = decode(await registry.token([], alice));
  const kid = issued.header.kid!;
  const claims = { sub: 'alice', access: TEAM_A_PULL, rev: issued.payload.rev as string };
  const valid = { algorithm: 'ES256' as const, keyid: kid, issuer: 'berth', audience: 'berth', expiresIn: 60 };
  t.is(
    (await pullWith(`Bearer ${jwt.sign(claims, key, valid)}`)).status,
    404,
    'a correctly made token is accepted (the manifest just does not exist)',
  );

  const otherKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  const publicPem = createPublicKey(key).export({ type: 'spki', format: 'pem' }) as string;
  const unsigned = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT', kid })).toString('base64url')}.${Buffer.from(
    JSON.stringify({ ...claims, iss: 'berth', aud: 'berth', exp: Math.floor(Date.now() / 1000) + 60 }),
  ).toString('base64url')}.`;
  const good = jwt.sign({ sub: 'alice', access: [], rev: claims.rev }, key, valid);
  const [head, , signature] = good.split('.');
  const tampered = `${head}.${Buffer.from(JSON.stringify({ ...decode(good).payload, access: TEAM_A_PULL })).toString('base64url')}.${signature}`;

  const rejected: Record<string, string> = {
    expired: jwt.sign({ ...claims, exp: Math.floor(Date.now() / 1000) - 60 }, key, {
      algorithm: 'ES256',
      keyid: kid,
      issuer: 'berth',
      audience: 'berth',
    }),
    'signed by another key': jwt.sign(claims, otherKey, valid),
    'alg none': unsigned,
    'HS256 with the public key as secret': hs256(claims, kid, publicPem),
    'wrong audience': jwt.sign(claims, key, { ...valid, audience: 'another-registry' }),
    'wrong issuer': jwt.sign(claims, key, { ...valid, issuer: 'someone-else' }),
    'tampered access claim': tampered,
    'malformed access claim': jwt.sign({ sub: 'alice', access: 'everything', rev: claims.rev }, key, valid),
    'without a revision': jwt.sign({ sub: 'alice', access: TEAM_A_PULL }, key, valid),
    'another revision': jwt.sign({ ...claims, rev: 'AAAAAAAAAAAAAAAAAAAAAA' }, key, valid),
  };
  for (const [what, token] of Object.entries(rejected)) {
    const response = await pullWith(`Bearer ${token}`);
    t.is(response.status, 401, what);
    t.regex(response.headers.get('www-authenticate') ?? '', /,error="invalid_token"$/, what);
  }
  for (const garbled of ['Bearer', 'Bearer not.a.jwt', 'Bearer a b', basic(alice), 'Token abc']) {
    const response = await pullWith(garbled);
    t.is(response.status, 401, garbled);
    t.regex(response.headers.get('www-authenticate') ?? '', /^Bearer realm=.*,error="invalid_token"$/, garbled);
  }
});

/** Made by hand: jsonwebtoken itself refuses to use a public key as an HMAC secret. */
function hs256(claims: object, kid: string, secret: string): string {
  const encode = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const signed = `${encode({ alg: 'HS256', typ: 'JWT', kid })}.${encode({ ...claims, iss: 'berth', aud: 'berth', iat: now, exp: now + 60 })}`;
  return `${signed}.${createHmac('sha256', secret).update(signed).digest('base64url')}`;
}

test('the signing key generated into the data directory is readable only by the registry', async (t) => {
  const { mode } = await stat(path.join(registry.process.dataDir, 'auth', 'token-signing-key.pem'));
  t.is(mode & 0o777, 0o600);
});

test('no password, secret or token appears in the registry log', async (t) => {
  const token = await registry.token(['repository:team-a/app:pull'], alice);
  await pullWith(`Bearer ${token}`);
  const logs = registry.process.logs;
  t.false(logs.includes('alice-password-1'));
  t.false(logs.includes(token.split('.')[2]!));
  t.false(logs.includes(Buffer.from('alice:alice-password-1').toString('base64')));
  t.false(/eyJ[A-Za-z0-9_-]{10,}/.test(logs), 'nothing that looks like a JWT');
});
