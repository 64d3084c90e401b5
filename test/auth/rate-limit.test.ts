import test from 'ava';
import { setTimeout as sleep } from 'node:timers/promises';
import { AuthRegistry, type Credentials } from '../helpers/auth-registry.js';

let registry: AuthRegistry;
let grace: Credentials;

// Fixed windows: each test's failed logins (a bcrypt comparison each, seconds apart on a loaded machine) must fall
// in one window; with 2 s, a CI run at load 25 spread six of them over two windows and was never locked out.
const WINDOW_SECONDS = 10;

test.before(async () => {
  registry = await AuthRegistry.start({
    env: {
      BERTH_AUTH__RATE_LIMIT__MAX_FAILURES_PER_ACCOUNT: '3',
      BERTH_AUTH__RATE_LIMIT__MAX_FAILURES_PER_ADDRESS: '6',
      BERTH_AUTH__RATE_LIMIT__WINDOW_SECONDS: String(WINDOW_SECONDS),
    },
  });
  grace = await registry.addUser('grace', 'grace-password-1');
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
test.serial(
  'repeated bad passwords lock the account with 429 and Retry-After, even for the right password, until the window ends',
  async (t) => {
    for (let attempt = 0; attempt < 3; attempt++) t.is((await loginStatus({ ...grace, password: 'guess' })).status, 401);

    const locked = await loginStatus(grace);
    t.is(locked.status, 429);
    t.is(locked.code, 'TOOMANYREQUESTS');
    const retryAfter = Number(locked.retryAfter);
    t.true(retryAfter >= 1 && retryAfter <= WINDOW_SECONDS, `Retry-After: ${locked.retryAfter}`);

    await sleep(retryAfter * 1000 + 100);
    t.is((await loginStatus(grace)).status, 200, 'the lock lifts after the window');
  },
);

test.serial('one address trying many accounts is locked out too', async (t) => {
  // The previous test waited out its window, which counted this address's failures too (one transaction counts both).
  for (let account = 0; account < 6; account++) t.is((await loginStatus({ username: `nobody-${account}`, password: 'guess' })).status, 401);
  const locked = await loginStatus({ username: 'nobody-else', password: 'guess' });
  t.is(locked.status, 429);
  t.truthy(locked.retryAfter);
});
