import test from 'ava';
import { generateKeyPairSync } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import jwt from 'jsonwebtoken';
import { AuthRegistry, type Credentials, type TokenResponse } from '../helpers/auth-registry.js';
import { request } from '../helpers/http-client.js';

let registry: AuthRegistry;
let grace: Credentials;
let heidi: Credentials;
let genuine: string;

const WINDOW_SECONDS = 2;

test.before(async () => {
  registry = await AuthRegistry.start({
    env: {
      BERTH_AUTH__RATE_LIMIT__MAX_FAILURES_PER_ACCOUNT: '3',
      BERTH_AUTH__RATE_LIMIT__MAX_FAILURES_PER_ADDRESS: '6',
      BERTH_AUTH__RATE_LIMIT__WINDOW_SECONDS: String(WINDOW_SECONDS),
    },
  });
  grace = await registry.addUser('grace', 'grace-password-1');
  heidi = await registry.addUser('heidi', 'heidi-password-1');
  const login = await request(registry.url, '/token', {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'password', username: 'heidi', password: heidi.password, service: 'berth', client_id: 'test', access_type: 'offline' }).toString(),
  });
  genuine = ((await login.json()) as TokenResponse).refresh_token!;
});

test.after.always(async () => {
  await registry?.destroy();
});

async function loginStatus(credentials: Credentials): Promise<{ status: number; retryAfter: string | null; code?: string }> {
  const response = await registry.tokenRequest([], credentials);
  const body = (await response.json()) as { errors?: Array<{ code: string }> };
  return { status: response.status, retryAfter: response.headers.get('retry-after'), code: body.errors?.[0]?.code };
}

// Serial: both limits count this one client address.
test.serial('repeated bad passwords lock the account with 429 and Retry-After, even for the right password, until the window ends', async (t) => {
  for (let attempt = 0; attempt < 3; attempt++) t.is((await loginStatus({ ...grace, password: 'guess' })).status, 401);

  const locked = await loginStatus(grace);
  t.is(locked.status, 429);
  t.is(locked.code, 'TOOMANYREQUESTS');
  const retryAfter = Number(locked.retryAfter);
  t.true(retryAfter >= 1 && retryAfter <= WINDOW_SECONDS, `Retry-After: ${locked.retryAfter}`);

  await sleep(retryAfter * 1000 + 100);
  t.is((await loginStatus(grace)).status, 200, 'the lock lifts after the window');
});

test.serial('one address trying many accounts is locked out too', async (t) => {
  // The previous test's failures from this address have expired with their window.
  await sleep(WINDOW_SECONDS * 1000);
  for (let account = 0; account < 6; account++) t.is((await loginStatus({ username: `nobody-${account}`, password: 'guess' })).status, 401);
  const locked = await loginStatus({ username: 'nobody-else', password: 'guess' });
  t.is(locked.status, 429);
  t.truthy(locked.retryAfter);
});

/** POST /token from another client address: the registry listens on 127.0.0.1, the loopback answers for all of 127/8. */
function refreshGrantFrom(localAddress: string, refreshToken: string): Promise<{ status: number; retryAfter: string | undefined }> {
  const body = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken, service: 'berth', client_id: 'test' }).toString();
  return new Promise((resolve, reject) => {
    const sent = httpRequest(
      `${registry.url}/token`,
      { method: 'POST', localAddress, headers: { 'Content-Type': 'application/x-www-form-urlencoded', 'Content-Length': Buffer.byteLength(body) }, timeout: 10_000 },
      (response) => {
        response.resume();
        response.once('end', () => resolve({ status: response.statusCode ?? 0, retryAfter: response.headers['retry-after'] }));
      },
    );
    sent.once('error', reject).once('timeout', () => sent.destroy(new Error('no answer')));
    sent.end(body);
  });
}

function forgedRefreshToken(subject: string): string {
  const forger = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  return jwt.sign({ sub: subject, gen: 0 }, forger, { algorithm: 'ES256', issuer: 'berth', audience: 'berth#refresh', expiresIn: 60, keyid: 'guess' });
}

test.serial('forged refresh tokens naming an account lock out only the forging address: the account still refreshes and logs in from another', async (t) => {
  // The earlier tests' failures from this address expire with their window.
  await sleep(WINDOW_SECONDS * 1000);
  const forged = forgedRefreshToken('heidi');
  // Five forgeries: past heidi's limit of three, under the address's six.
  for (let attempt = 0; attempt < 5; attempt++) t.is((await refreshGrantFrom('127.0.0.3', forged)).status, 401);
  t.is((await refreshGrantFrom('127.0.0.4', genuine)).status, 200, "heidi's own refresh token still works");
  t.is((await refreshGrantFrom('127.0.0.3', genuine)).status, 200, 'even from the forging address, below its limit');
  t.is((await loginStatus(heidi)).status, 200, 'and her password login');

  t.is((await refreshGrantFrom('127.0.0.3', `garbage-${Date.now()}`)).status, 401, 'the sixth failure from the forging address');
  const locked = await refreshGrantFrom('127.0.0.3', forged);
  t.is(locked.status, 429, 'the forging address is locked out at its limit');
  t.true(Number(locked.retryAfter) >= 1);
  t.is((await refreshGrantFrom('127.0.0.3', genuine)).status, 429, 'whatever it sends');
  t.is((await refreshGrantFrom('127.0.0.4', genuine)).status, 200, 'while other addresses go on');
});

test.serial('a genuine refresh token that no longer holds counts against its account: three lock it out from every address', async (t) => {
  await sleep(WINDOW_SECONDS * 1000);
  const login = await request(registry.url, '/token', {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'password', username: 'grace', password: grace.password, service: 'berth', client_id: 'test', access_type: 'offline' }).toString(),
  });
  const stale = ((await login.json()) as TokenResponse).refresh_token!;
  // A new password ends the sessions the old one started.
  grace = await registry.addUser('grace', 'grace-password-2');
  for (let attempt = 0; attempt < 3; attempt++) t.is((await refreshGrantFrom(`127.0.0.${5 + attempt}`, stale)).status, 401);
  t.is((await loginStatus(grace)).status, 429, "grace's account is locked: the token was ours, so the failures were hers");

  await sleep(WINDOW_SECONDS * 1000 + 100);
  t.is((await loginStatus(grace)).status, 200, 'the lock lifts after the window');
});
