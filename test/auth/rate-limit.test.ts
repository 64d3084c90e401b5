import test from 'ava';
import { generateKeyPairSync } from 'node:crypto';
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

function refreshGrant(refreshToken: string): Promise<Response> {
  return request(registry.url, '/token', {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken, service: 'berth', client_id: 'test' }).toString(),
  });
}

test.serial('failed refresh_token grants count toward the same per-account and per-address limits as bad passwords', async (t) => {
  // The earlier tests' failures from this address expire with their window.
  await sleep(WINDOW_SECONDS * 1000);

  // Refresh tokens naming heidi but signed by someone else: three failures lock heidi's account...
  const forger = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  const forged = jwt.sign({ sub: 'heidi' }, forger, { algorithm: 'ES256', issuer: 'berth', audience: 'berth#refresh', expiresIn: 60, keyid: 'guess' });
  for (let attempt = 0; attempt < 3; attempt++) t.is((await refreshGrant(forged)).status, 401);
  const lockedRefresh = await refreshGrant(genuine);
  t.is(lockedRefresh.status, 429, 'even the genuine refresh token, while the account is locked');
  t.is(((await lockedRefresh.json()) as { errors: Array<{ code: string }> }).errors[0]!.code, 'TOOMANYREQUESTS');
  t.true(Number(lockedRefresh.headers.get('retry-after')) >= 1);
  t.is((await loginStatus(heidi)).status, 429, 'and the password login');

  // ...and, with garbage that names no account, the address reaches its limit of six.
  for (let attempt = 0; attempt < 3; attempt++) t.is((await refreshGrant(`garbage-${attempt}`)).status, 401);
  const otherAccount = await loginStatus({ username: 'grace', password: 'grace-password-1' });
  t.is(otherAccount.status, 429, 'another account from this address is locked out too');
  t.truthy(otherAccount.retryAfter);

  await sleep(WINDOW_SECONDS * 1000 + 100);
  t.is((await refreshGrant(genuine)).status, 200, 'the lock lifts after the window');
});
