import test from 'ava';
import { generateKeyPairSync } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import jwt from 'jsonwebtoken';
import { AuthRegistry } from '../helpers/auth-registry.js';

// The default window (300 s): nothing expires while a test runs, however slow the machine.
const PER_ACCOUNT = 5;
const PER_ADDRESS = 8;

let registry: AuthRegistry;

test.before(async () => {
  registry = await AuthRegistry.start({
    env: {
      BERTH_AUTH__RATE_LIMIT__MAX_FAILURES_PER_ACCOUNT: String(PER_ACCOUNT),
      BERTH_AUTH__RATE_LIMIT__MAX_FAILURES_PER_ADDRESS: String(PER_ADDRESS),
    },
  });
});

test.after.always(async () => {
  await registry?.destroy();
});

interface TokenAnswer {
  status: number;
  retryAfter?: string;
  refreshToken?: string;
}

/** POST /token from a given client address: the registry listens on 127.0.0.1, and the loopback answers for all of 127/8. */
function tokenFrom(localAddress: string, form: Record<string, string>): Promise<TokenAnswer> {
  const body = new URLSearchParams({ service: 'berth', client_id: 'test', ...form }).toString();
  return new Promise((resolve, reject) => {
    const sent = httpRequest(
      `${registry.url}/token`,
      {
        method: 'POST',
        localAddress,
        headers: { 'Content-Type': 'application/x-www-form-urlencoded', 'Content-Length': Buffer.byteLength(body) },
        timeout: 20_000,
      },
      (response) => {
        let text = '';
        response.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
        response.once('end', () => {
          const parsed = JSON.parse(text) as { refresh_token?: string };
          resolve({ status: response.statusCode ?? 0, retryAfter: response.headers['retry-after'], refreshToken: parsed.refresh_token });
        });
      },
    );
    sent.once('error', reject).once('timeout', () => sent.destroy(new Error('no answer')));
    sent.end(body);
  });
}

const refreshFrom = (localAddress: string, refreshToken: string) =>
  tokenFrom(localAddress, { grant_type: 'refresh_token', refresh_token: refreshToken });
const loginFrom = (localAddress: string, username: string, password: string) =>
  tokenFrom(localAddress, { grant_type: 'password', username, password, access_type: 'offline' });

/** A refresh token naming `subject` in every claim the registry's own carry, signed with a key the registry never saw. */
function forgedRefreshToken(subject: string): string {
  const forger = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  return jwt.sign({ sub: subject, gen: 0 }, forger, {
    algorithm: 'ES256',
    issuer: 'berth',
    audience: 'berth#refresh',
    expiresIn: 60,
    keyid: 'guess',
  });
}

test('five forged refresh tokens naming alice lock out only the forging address: alice still logs in and refreshes from another', async (t) => {
  await registry.addUser('alice', 'alice-password-1');
  const genuine = (await loginFrom('127.0.0.4', 'alice', 'alice-password-1')).refreshToken!;
  const forged = forgedRefreshToken('alice');
  for (let attempt = 0; attempt < PER_ACCOUNT; attempt++) t.is((await refreshFrom('127.0.0.3', forged)).status, 401);

  t.is((await loginFrom('127.0.0.4', 'alice', 'alice-password-1')).status, 200, 'alice logs in from another address');
  t.is((await refreshFrom('127.0.0.4', genuine)).status, 200, 'and refreshes her own token');
  t.is((await refreshFrom('127.0.0.3', genuine)).status, 200, 'even from the forging address, below its own limit');

  for (let attempt = PER_ACCOUNT; attempt < PER_ADDRESS; attempt++)
    t.is((await refreshFrom('127.0.0.3', `garbage-${attempt}`)).status, 401);
  const locked = await refreshFrom('127.0.0.3', genuine);
  t.is(locked.status, 429, 'the forging address is locked out at its limit, whatever it sends');
  t.true(Number(locked.retryAfter) >= 1);
  t.is((await loginFrom('127.0.0.3', 'alice', 'alice-password-1')).status, 429);
  t.is((await loginFrom('127.0.0.4', 'alice', 'alice-password-1')).status, 200, 'while alice goes on elsewhere');
});

test('wrong passwords for a name that is no account lock out nobody but the guessing address', async (t) => {
  for (let attempt = 0; attempt < PER_ACCOUNT; attempt++) t.is((await loginFrom('127.0.0.5', 'carol', 'guess')).status, 401);
  await registry.addUser('carol', 'carol-password-1');
  t.is((await loginFrom('127.0.0.6', 'carol', 'carol-password-1')).status, 200, 'the account made afterwards is not locked');
});

test('a refresh token of ours that no longer holds counts against its account: five lock it out from every address', async (t) => {
  await registry.addUser('bob', 'bob-password-1');
  const stale = (await loginFrom('127.0.0.7', 'bob', 'bob-password-1')).refreshToken!;
  // A new password ends the sessions the old one started.
  await registry.addUser('bob', 'bob-password-2');
  for (let attempt = 0; attempt < PER_ACCOUNT; attempt++) t.is((await refreshFrom(`127.0.0.${10 + attempt}`, stale)).status, 401);
  const locked = await loginFrom('127.0.0.20', 'bob', 'bob-password-2');
  t.is(locked.status, 429, "the token was signed by us, so the failures were bob's");
  t.true(Number(locked.retryAfter) >= 1);
});

test('wrong passwords for an existing account lock it out from every address', async (t) => {
  await registry.addUser('dave', 'dave-password-1');
  for (let attempt = 0; attempt < PER_ACCOUNT; attempt++) t.is((await loginFrom(`127.0.0.${30 + attempt}`, 'dave', 'guess')).status, 401);
  t.is((await loginFrom('127.0.0.40', 'dave', 'dave-password-1')).status, 429);
});
