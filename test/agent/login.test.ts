import test from 'ava';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { AgentDaemon } from '../helpers/agent-daemon.js';
import { layerOf, pushLayout, writeImageLayout } from '../helpers/agent-images.js';
import { ADMIN, AuthRegistry } from '../helpers/auth-registry.js';

/** `berth-agent login` against a Berth registry with auth on: the daemon checks and keeps the credentials for its pulls. */

let registry: AuthRegistry;
let agent: AgentDaemon;
let workDir: string;
let image: string;
const DEPLOYER = { username: 'deployer', password: 'deployer-password-1' };

test.before(async () => {
  workDir = await mkdtemp(path.join(tmpdir(), 'berth-agent-login-'));
  [registry, agent] = await Promise.all([AuthRegistry.start(), AgentDaemon.start()]);
  await registry.addUser(DEPLOYER.username, DEPLOYER.password);
  await registry.grant(`user:${DEPLOYER.username}`, 'team/**', ['pull']);
  const layout = path.join(workDir, 'layout');
  await writeImageLayout(layout, 'v1', { layers: [await layerOf([{ name: 'app/version', content: 'v1\n' }], 'gzip')] });
  image = `${registry.host}/team/private:v1`;
  await pushLayout(layout, 'v1', image, ADMIN);
});

test.after.always(async () => {
  await agent?.destroy();
  await registry?.destroy();
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

test.serial('a private image cannot be pulled before login', async (t) => {
  const pull = await agent.cli(['pull', image], { allowFailure: true });
  t.is(pull.code, 1);
  t.regex(pull.stderr, /unauthorized|401/);
});

test.serial('login with a wrong password is refused and saves nothing', async (t) => {
  const login = await agent.cli(['login', '-u', DEPLOYER.username, '--password-stdin', registry.host], {
    allowFailure: true,
    input: 'wrong\n',
  });
  t.is(login.code, 1);
  t.regex(login.stderr, /login to .* failed: unauthorized: incorrect username or password/);
  await t.throwsAsync(stat(path.join(agent.dataDir, 'credentials.json')));
});

test.serial('after login the daemon pulls with the saved credentials; after logout it cannot', async (t) => {
  const login = await agent.cli(['login', '-u', DEPLOYER.username, '--password-stdin', registry.host], { input: `${DEPLOYER.password}\n` });
  t.is(login.stdout, 'Login Succeeded\n');
  t.is((await stat(path.join(agent.dataDir, 'credentials.json'))).mode & 0o777, 0o600);

  const pull = await agent.cli(['pull', image]);
  t.regex(pull.stdout, new RegExp(`Downloaded newer image for ${image}`));

  t.is((await agent.cli(['logout', registry.host])).stdout, `Removing login credentials for ${registry.host}\n`);
  await agent.cli(['rmi', image]);
  const refused = await agent.cli(['pull', image], { allowFailure: true });
  t.is(refused.code, 1);
  t.regex(refused.stderr, /unauthorized|401/);
});
