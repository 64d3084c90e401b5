import test from 'ava';
import { LeaseLostError, withGcLease } from '../../server/gc/lease.js';
import { RegistryKeys } from '../../server/metadata/keys.js';
import { LeaseNames } from '../../server/metadata/metadata-store.js';
import { RedisGcStore } from '../../server/metadata/redis-gc-store.js';
import { RedisMetadataStore } from '../../server/metadata/redis-metadata-store.js';
import { WebhookQueue } from '../../server/webhooks/queue.js';
import { sharedRedis } from '../helpers/shared-redis.js';

// What a failover can do to a lease (the primary acknowledged it, died before the replica had it, and another
// replica took it on the promoted one) is done here directly: the lease key is dropped and taken again.
const redis = sharedRedis();

function storesFor(prefix: string): { metadata: RedisMetadataStore; keys: RegistryKeys } {
  return { metadata: new RedisMetadataStore(redis().duplicate(), prefix), keys: new RegistryKeys(prefix) };
}

/** The lease is lost as in a failover, and another process takes it. */
async function loseLeaseToAnother(metadata: RedisMetadataStore, keys: RegistryKeys, name: string): Promise<void> {
  await redis().del(keys.lease(name));
  const other = await metadata.acquireLease(name, 10_000);
  if (!other) throw new Error('the other process could not take the lease');
}

test('a collector that lost its lease cannot clear, dequeue or delete anything: every write checks the holder atomically', async (t) => {
  const { metadata, keys } = storesFor('fence-gc:');
  const lease = await metadata.acquireLease(LeaseNames.gc, 10_000);
  t.truthy(lease);
  const gc = new RedisGcStore(redis(), 'fence-gc:').fencedBy(lease!.fence);
  await gc.add('mark', ['sha256:kept']);
  await gc.enqueue(['queued']);
  t.deepEqual(await gc.dequeue(1), ['queued'], 'the holder works as before');
  await gc.enqueue(['queued-again']);

  await loseLeaseToAnother(metadata, keys, LeaseNames.gc);
  await t.throwsAsync(gc.clearScratch(), { instanceOf: LeaseLostError });
  await t.throwsAsync(gc.clear('mark'), { instanceOf: LeaseLostError });
  await t.throwsAsync(gc.dequeue(1), { instanceOf: LeaseLostError });
  await t.throwsAsync(gc.tombstoneBlobs(['sha256:kept'], Date.now(), false), { instanceOf: LeaseLostError });
  await t.throwsAsync(gc.finishBlobs(['sha256:kept']), { instanceOf: LeaseLostError });
  // Nothing of the new holder's state was touched.
  t.true(await gc.whichAreMembers('mark', ['sha256:kept']).then(([member]) => member === true));
  t.is(await redis().llen(keys.gcQueue()), 1);
  await metadata.close();
});

test('the collector lease check asks Redis: a lease dropped by a failover stops the run at its next step', async (t) => {
  const { metadata, keys } = storesFor('fence-run:');
  const outcome = withGcLease(metadata, async (lease) => {
    await lease.assertHeld();
    await loseLeaseToAnother(metadata, keys, LeaseNames.gc);
    await lease.assertHeld();
    return 'finished';
  });
  await t.throwsAsync(outcome, { instanceOf: LeaseLostError });
  await metadata.close();
});

test('a webhook worker that lost its lease cannot pop the head it delivered: the new holder still sees it', async (t) => {
  const prefix = 'fence-hooks:';
  const { metadata, keys } = storesFor(prefix);
  const queue = new WebhookQueue(redis(), prefix, 10);
  const name = LeaseNames.webhook('receiver');
  const lease = await metadata.acquireLease(name, 10_000);
  await queue.enqueue(['receiver'], { id: 'event-1', action: 'push', repository: 'a', body: '{}' });
  const head = await queue.head('receiver');
  const delivered = {
    endpoint: 'receiver',
    eventId: 'event-1',
    action: 'push',
    repository: 'a',
    attempt: 1,
    outcome: 'delivered' as const,
    at: new Date().toISOString(),
  };

  await loseLeaseToAnother(metadata, keys, name);
  t.false(await queue.finish(head!.raw, delivered, lease!.fence));
  t.is(await queue.depth('receiver'), 1, 'the event is still queued for the new holder');
  await metadata.close();
});
