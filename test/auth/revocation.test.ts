import test, { type ExecutionContext } from 'ava';
import { setTimeout as sleep } from 'node:timers/promises';
import { AuthRegistry, pushImageWithToken, type Credentials, type TokenResponse } from '../helpers/auth-registry.js';
import { request } from '../helpers/http-client.js';

// Revocation reaches tokens already issued within auth.token.revocationCacheSeconds (5 by default).
const WINDOW_MS = 5_000;
let registry: AuthRegistry;

test.before(async () => {
  registry = await AuthRegistry.start();
  await registry.grant('group:readers', 'rev/**', ['pull']);
  await pushImageWithToken(
    registry.url,
    await registry.token(['repository:rev/app:pull,push'], { username: 'admin', password: 'admin-password-1' }),
    'rev/app',
    'v1',
  );
});

test.after.always(async () => {
  await registry?.destroy();
});

function pull(token: string): Promise<Response> {
  return request(registry.url, '/v2/rev/app/manifests/v1', { headers: { Authorization: `Bearer ${token}` } });
}

/** Pulls with the token until it is refused; returns how long that took after `since`. */
async function msUntilRefused(t: ExecutionContext, token: string, since: number): Promise<number> {
  for (;;) {
    const response = await pull(token);
    if (response.status !== 200) {
      t.is(response.status, 401);
      t.regex(response.headers.get('www-authenticate') ?? '', /error="invalid_token"/);
      return Date.now() - since;
    }
    if (Date.now() - since > WINDOW_MS * 3) return Infinity;
    await sleep(100);
  }
}

function refreshGrant(refreshToken: string): Promise<Response> {
  return request(registry.url, '/token', {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'refresh_token',
      refresh_token: refreshToken,
      service: 'berth',
      client_id: 'test',
      scope: 'repository:rev/app:pull',
    }).toString(),
  });
}

test("a deleted robot's live token is refused within the cache window", async (t) => {
  const robot = await registry.addRobot('doomed', { groups: ['readers'] });
  const token = await registry.token(['repository:rev/app:pull'], robot);
  t.is((await pull(token)).status, 200);
  const deleted = Date.now();
  await registry.admin('DELETE', '/robots/doomed');
  t.true((await msUntilRefused(t, token, deleted)) <= WINDOW_MS + 1000);
});

test('a new password revokes the tokens and the refresh token of the old one; a token got with the new one works at once', async (t) => {
  const ivan: Credentials = await registry.addUser('ivan', 'ivan-password-1', { groups: ['readers'] });
  const login = await registry.tokenRequest(['repository:rev/app:pull'], ivan, { offline_token: 'true', client_id: 'test' });
  const { token: old, refresh_token: oldRefresh } = (await login.json()) as TokenResponse;
  t.is((await pull(old)).status, 200, 'the revision is now cached');

  const changed = Date.now();
  await registry.admin('PUT', '/users/ivan', { password: 'ivan-password-2' });
  const fresh = await registry.token(['repository:rev/app:pull'], { username: 'ivan', password: 'ivan-password-2' });
  t.is((await pull(fresh)).status, 200, 'newer than the cache: checked again, not refused for the window');
  t.is((await refreshGrant(oldRefresh!)).status, 401, 'the refresh token of the old password, at once');
  t.true((await msUntilRefused(t, old, changed)) <= WINDOW_MS + 1000);
  t.is((await pull(fresh)).status, 200);
});

test("removing a rule revokes its subject's tokens, and nobody else's", async (t) => {
  const judy = await registry.addUser('judy', 'judy-password-1');
  const kim = await registry.addUser('kim', 'kim-password-1');
  const judyRule = await registry.admin<{ id: string }>('POST', '/permissions', {
    subject: 'user:judy',
    repositories: 'rev/app',
    actions: ['pull'],
  });
  await registry.grant('user:kim', 'rev/app', ['pull']);
  const judyToken = await registry.token(['repository:rev/app:pull'], judy);
  const kimToken = await registry.token(['repository:rev/app:pull'], kim);
  t.is((await pull(judyToken)).status, 200);
  t.is((await pull(kimToken)).status, 200);

  const removed = Date.now();
  await registry.admin('DELETE', `/permissions/${judyRule.id}`);
  t.true((await msUntilRefused(t, judyToken, removed)) <= WINDOW_MS + 1000);
  t.is((await pull(kimToken)).status, 200, "kim's token rests on another rule");
  const again = await registry.token(['repository:rev/app:pull'], judy);
  t.deepEqual(JSON.parse(Buffer.from(again.split('.')[1]!, 'base64url').toString()).access, [], 'a new token for judy grants nothing');
});

test("a robot's new secret revokes its live tokens and the old secret; the new secret works at once", async (t) => {
  const robot = await registry.addRobot('rotated', { groups: ['readers'] });
  const token = await registry.token(['repository:rev/app:pull'], robot);
  t.is((await pull(token)).status, 200);
  const rotated = Date.now();
  const { secret } = await registry.admin<{ secret: string }>('POST', '/robots/rotated/secret');
  t.not(secret, robot.password);
  t.is((await registry.tokenRequest([], robot)).status, 401, 'the old secret');
  t.is((await pull(await registry.token(['repository:rev/app:pull'], { username: robot.username, password: secret }))).status, 200);
  t.true((await msUntilRefused(t, token, rotated)) <= WINDOW_MS + 1000);

  const cli = JSON.parse((await registry.cli(['robot', 'secret', 'rotated'])).stdout) as { username: string; secret: string };
  t.is(cli.username, 'robot$rotated');
  t.is((await registry.tokenRequest([], { username: cli.username, password: cli.secret })).status, 200);
  t.is((await registry.cli(['robot', 'secret', 'nobody'], { allowFailure: true })).code, 1);
});
