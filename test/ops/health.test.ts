import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import test from 'ava';
import { request } from '../helpers/http-client.js';
import { RegistryProcess } from '../helpers/registry-process.js';

async function statusUntil(url: string, wanted: number, timeoutMs = 15_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const response = await request(url, '/readyz');
    await response.arrayBuffer();
    if (response.status === wanted || Date.now() > deadline) return response.status;
    await sleep(20);
  }
}

test('/livez answers 200; /readyz answers 503 while Redis is down and 200 once it is back', async (t) => {
  const registry = await RegistryProcess.start();
  try {
    const live = await request(registry.url, '/livez');
    t.is(live.status, 200);
    t.deepEqual(await live.json(), { status: 'ok' });
    const ready = await request(registry.url, '/readyz');
    t.is(ready.status, 200);
    t.deepEqual(await ready.json(), { status: 'ok', checks: { redis: 'ok', storage: 'ok' } });

    // Stopped, not killed: the registry restarts a dead embedded Redis within milliseconds, and its client
    // re-sends the probe's PING to the new one, so a kill is over before a probe can see it.
    const redisPid = Number(await readFile(path.join(registry.dataDir, 'redis', 'redis.pid'), 'utf8'));
    process.kill(redisPid, 'SIGSTOP');
    try {
      const down = await request(registry.url, '/readyz');
      t.is(down.status, 503);
      t.is(
        ((await down.json()) as { checks: { redis: string } }).checks.redis,
        'redis did not answer in time (its primary is lost or failing over)',
      );
      t.is((await request(registry.url, '/livez')).status, 200, 'the process still serves');
    } finally {
      process.kill(redisPid, 'SIGCONT');
    }
    t.is(await statusUntil(registry.url, 200), 200);
  } finally {
    await registry.destroy();
  }
});
