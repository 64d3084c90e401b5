import { fileURLToPath } from 'node:url';
import test from 'ava';
import { run } from '../helpers/exec.js';
import { AgentDaemon } from '../helpers/agent-daemon.js';
import { request } from '../helpers/http-client.js';
import { RegistryProcess } from '../helpers/registry-process.js';

/**
 * The registry and the agent share one host (and often one container environment): the registry reads
 * BERTH_* except BERTH_AGENT_*, the agent reads BERTH_AGENT_*, and each names the variable behind a bad value.
 */

const REGISTRY_CLI = fileURLToPath(new URL('../../server/cli.js', import.meta.url));
const AGENT_CLI = fileURLToPath(new URL('../../runtime-agent/cli.js', import.meta.url));

function runNode(script: string, args: string[], env: Record<string, string>) {
  return run(process.execPath, [script, ...args], { env, allowFailure: true, timeoutMs: 20_000 });
}

test('berth serve starts and answers /v2/ with BERTH_AGENT_DATA_DIR and BERTH_AGENT_SOCKET set', async (t) => {
  const registry = await RegistryProcess.start({
    env: { BERTH_AGENT_DATA_DIR: '/nonexistent/agent', BERTH_AGENT_SOCKET: '/nonexistent/agent.sock' },
  });
  t.teardown(() => registry.destroy());
  t.is((await request(registry.url, '/v2/')).status, 200);
});

test('berth-agent daemon starts and answers ps with BERTH_HTTP__PORT and BERTH_DATA_DIR set', async (t) => {
  const agent = await AgentDaemon.start([], { BERTH_HTTP__PORT: 'not-a-port', BERTH_DATA_DIR: '/nonexistent/registry' });
  t.teardown(() => agent.destroy());
  const ps = await agent.cli(['ps', '-a']);
  t.is(ps.code, 0, ps.stderr);
});

test('a bad BERTH_* value stops berth serve with exit 2 and a message naming the variable and its key', async (t) => {
  const result = await runNode(REGISTRY_CLI, ['serve', '--port', '0'], { BERTH_UPLOADS__MAX_PER_REPOSITORY: '0' });
  t.is(result.code, 2);
  t.regex(result.stderr, /uploads\.maxPerRepository: .*\(set by BERTH_UPLOADS__MAX_PER_REPOSITORY\)/);
});

test('an unknown BERTH_* variable stops berth serve with a message naming it', async (t) => {
  const result = await runNode(REGISTRY_CLI, ['serve', '--port', '0'], { BERTH_HTTP__PROT: '5000' });
  t.is(result.code, 2);
  t.regex(result.stderr, /BERTH_HTTP__PROT/);
});

test('a bad BERTH_AGENT_* value stops berth-agent daemon with a message naming the variable', async (t) => {
  const result = await runNode(AGENT_CLI, ['daemon'], { BERTH_AGENT_MAX_CONCURRENT_DOWNLOADS: '0' });
  t.not(result.code, 0);
  t.regex(result.stderr, /maxConcurrentDownloads: .*\(set by BERTH_AGENT_MAX_CONCURRENT_DOWNLOADS\)/);
});
