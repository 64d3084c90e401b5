import { setTimeout as sleep } from 'node:timers/promises';
import test from 'ava';
import { startUpload, uniqueRepo } from '../helpers/oci-content.js';
import { RegistryProcess } from '../helpers/registry-process.js';
import { SimulatedNode } from '../helpers/simulated-node.js';

/** A body that sends `chunks` pieces of 1 KiB, `intervalMs` apart. */
function trickle(chunks: number, intervalMs: number): ReadableStream<Uint8Array> {
  let sent = 0;
  return new ReadableStream({
    async pull(controller) {
      if (sent === chunks) return controller.close();
      await sleep(intervalMs);
      controller.enqueue(new Uint8Array(1024).fill(sent));
      sent++;
    },
  });
}

async function joinedNode(registry: RegistryProcess): Promise<SimulatedNode> {
  const response = await fetch(`${registry.url}/admin/v1/nodes/tokens`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: '{}',
  });
  const { token } = (await response.json()) as { token: string };
  return SimulatedNode.join(registry.url, token, 'n1');
}

test('SIGTERM lets an upload in flight finish: its PATCH is acknowledged, then the registry exits 0', async (t) => {
  const registry = await RegistryProcess.start();
  t.teardown(() => registry.destroy());
  const { location } = await startUpload(registry.url, uniqueRepo('drain'));
  const patch = fetch(location, {
    method: 'PATCH',
    headers: { 'Content-Type': 'application/octet-stream' },
    body: trickle(10, 100),
    duplex: 'half',
  } as RequestInit);
  await sleep(300);
  const stopped = registry.stop('SIGTERM');

  const response = await patch;
  t.is(response.status, 202);
  t.is(response.headers.get('range'), '0-10239');
  await stopped;
  t.is(registry.child.exitCode, 0);
});

test('SIGTERM cuts a long-poll still open at the drain timeout, and the registry exits 0 soon after', async (t) => {
  const registry = await RegistryProcess.start({ env: { BERTH_HTTP__DRAIN_TIMEOUT_SECONDS: '1' } });
  t.teardown(() => registry.destroy());
  const node = await joinedNode(registry);
  const { version } = (await (await node.call('assignments?version=0&wait=0')).json()) as { version: number };
  const poll = node.call(`assignments?version=${version}&wait=60`).then(
    (response) => `answered ${response.status}`,
    () => 'cut',
  );
  await sleep(300);

  const started = Date.now();
  await registry.stop('SIGTERM');
  const tookMs = Date.now() - started;
  t.is(registry.child.exitCode, 0);
  t.true(tookMs < 6_000, `the registry took ${tookMs} ms to stop with a 1 s drain timeout`);
  t.is(await poll, 'cut');
  t.regex(registry.logs, /drain timeout: closing the connections still open/);
});
