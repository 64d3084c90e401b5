import test, { type ExecutionContext } from 'ava';
import { AssignmentWatch } from '../../server/deploy/assignment-watch.js';
import { DeployStore, REVISIONS_KEPT, type ControllerWrite } from '../../server/deploy/deploy-store.js';
import { EMPTY_STATE } from '../../server/deploy/deploy-types.js';
import { RedisServer } from '../helpers/redis-server.js';
import { eventually } from '../helpers/eventually.js';

const serviceSpecLess = {
  spec: {} as never,
  digest: `sha256:${'1'.repeat(64)}`,
  cause: 'deploy' as const,
  createdAt: new Date(0).toISOString(),
};

async function storeWithService(t: ExecutionContext) {
  const server = await RedisServer.start();
  const redis = server.client();
  t.teardown(async () => {
    redis.disconnect();
    await server.stop();
  });
  const store = new DeployStore(redis, 'test:');
  await store.createRevisions('shop', [{ service: 'web', revision: serviceSpecLess, tracked: null }], () => ({
    at: new Date(0).toISOString(),
    revision: 0,
    event: 'created',
    detail: null,
  }));
  return { store, redis };
}

const change = (holder: string, epoch: number, generation: number): ControllerWrite => ({
  holder,
  epoch,
  serviceId: 'shop/web',
  generation,
  state: { ...EMPTY_STATE, revision: 1, slots: { 1: { node: 'n1', revision: 1, startedAt: 0, healthySince: null } } },
  history: [{ at: new Date(0).toISOString(), revision: 1, event: 'started', detail: null }],
  quarantine: { repository: 'shop/web', tag: 'main', digest: serviceSpecLess.digest },
  assignments: {
    n1: { 'shop/web/1': { replica: 'shop/web/1', stack: 'shop', service: 'web', slot: '1', revision: 1, image: 'x', spec: {} as never } },
  },
});

test('a controller whose lease was taken over changes nothing: not the service, its history, quarantine or any assignment', async (t) => {
  const { store, redis } = await storeWithService(t);
  const first = await store.acquireController('controller-a', 200);
  t.is(first, 1);
  t.is(await store.acquireController('controller-b', 200), undefined, 'one controller at a time');
  await new Promise((resolve) => setTimeout(resolve, 300));
  const second = await store.acquireController('controller-b', 10_000);
  t.is(second, 2, 'a new holder gets a newer epoch');
  const before = await redis.dump('test:deploy:svc:shop/web');

  t.is(await store.write(change('controller-a', first!, 0)), 'stale');
  t.false(await store.renewController('controller-a', first!, 10_000), 'the old holder cannot renew either');
  t.deepEqual(await redis.dump('test:deploy:svc:shop/web'), before);
  t.deepEqual(
    (await store.history('shop/web', 10)).map((entry) => entry.event),
    ['created'],
  );
  t.false(await store.isQuarantined('shop/web', 'main', serviceSpecLess.digest));
  t.deepEqual(await store.assignments('n1'), { version: 0, assignments: [] });

  t.is(await store.write(change('controller-b', second!, 0)), 'ok');
  t.is((await store.service('shop', 'web'))?.generation, 1);
  t.is((await store.assignments('n1')).assignments.length, 1);
  t.true(await store.isQuarantined('shop/web', 'main', serviceSpecLess.digest));
});

test('a holder that lost the lease and took it again cannot use its old epoch; a write from an old read is refused', async (t) => {
  const { store } = await storeWithService(t);
  const old = await store.acquireController('controller-a', 100);
  await new Promise((resolve) => setTimeout(resolve, 200));
  const current = await store.acquireController('controller-a', 10_000);
  t.is(current, old! + 1);
  t.is(await store.write(change('controller-a', old!, 0)), 'stale');
  t.is(await store.write(change('controller-a', current!, 0)), 'ok');
  t.is(await store.write(change('controller-a', current!, 0)), 'conflict', 'generation 0 was already written over');
  t.is(await store.write(change('controller-a', current!, 1)), 'ok');
});

test("a node's assignment long-poll is woken by the controller's write, not by a timer", async (t) => {
  const { store, redis } = await storeWithService(t);
  const watch = new AssignmentWatch(redis.duplicate(), store.keys.assignmentsChannel());
  await watch.start();
  t.teardown(() => watch.stop());
  const epoch = await store.acquireController('controller-a', 10_000);
  const woken = { n1: false, n2: false };
  const n1 = watch.changed(store.keys.assignments('n1'), 30_000).then(() => (woken.n1 = true));
  void watch.changed(store.keys.assignments('n2'), 30_000).then(() => (woken.n2 = true));

  const started = Date.now();
  t.is(await store.write(change('controller-a', epoch!, 0)), 'ok');
  await n1;
  t.true(Date.now() - started < 10_000, 'woken by the write, long before its 30 s wait');
  t.false(woken.n2, 'a node whose assignments did not change is left waiting');
});

test('a removed service is taken back only by the lease holder, from a current read; placing it after its removal is refused', async (t) => {
  const { store, redis } = await storeWithService(t);
  const old = await store.acquireController('controller-a', 100);
  await new Promise((resolve) => setTimeout(resolve, 200));
  const epoch = await store.acquireController('controller-b', 10_000);
  t.is(await store.write(change('controller-b', epoch!, 0)), 'ok');

  t.deepEqual(await store.removeStack('shop'), ['web']);
  t.deepEqual(await store.stacks(), []);
  t.deepEqual(await store.removingServices(), ['shop/web']);
  t.deepEqual(await store.removeStack('shop'), [], 'removed once');
  t.is(await store.write(change('controller-b', epoch!, 1)), 'conflict', 'a pass that read the service before its removal places nothing');

  const removal = (holder: string, at: number, generation: number) => ({
    holder,
    epoch: at,
    serviceId: 'shop/web',
    generation,
    tracked: [{ repository: 'shop/web', tag: 'main' }],
    assignments: { n1: ['shop/web/1'] },
  });
  t.is(await store.removeService(removal('controller-a', old!, 1)), 'stale');
  t.is(await store.removeService(removal('controller-b', epoch!, 0)), 'conflict');
  t.is((await store.assignments('n1')).assignments.length, 1, 'nothing taken back by a refused removal');

  t.is(await store.removeService(removal('controller-b', epoch!, 1)), 'ok');
  t.deepEqual(await store.assignments('n1'), { version: 2, assignments: [] });
  t.deepEqual(await store.removingServices(), []);
  t.is(await store.service('shop', 'web'), undefined);
  t.deepEqual(await redis.hgetall('test:deploy:revs:shop/web'), { seq: '1' }, 'only the revision counter stays');
  t.is(await redis.exists('test:deploy:history:shop/web'), 0);
  t.is(await store.removeService(removal('controller-b', epoch!, 1)), 'conflict', 'safe to repeat: a second removal changes nothing');
});

test('a service keeps its last revisions and every one its state refers to; older ones go as new ones come', async (t) => {
  const { store } = await storeWithService(t);
  const epoch = await store.acquireController('controller-a', 10_000);
  // The controller ran revision 1 on n1 and found it healthy: the rollout's last healthy revision.
  const state = change('controller-a', epoch!, 0);
  state.state.rollout = { target: 1, revision: 1, lastHealthy: 1, status: 'succeeded' } as never;
  t.is(await store.write(state), 'ok');
  const created = () => ({ at: new Date(0).toISOString(), revision: 0, event: 'created' as const, detail: null });
  for (let index = 0; index < REVISIONS_KEPT + 9; index++)
    await store.createRevisions('shop', [{ service: 'web', revision: serviceSpecLess, tracked: null }], created);

  const last = REVISIONS_KEPT + 10;
  const numbers = (await store.revisions('shop/web')).map((revision) => revision.number);
  t.deepEqual(numbers, [...Array.from({ length: REVISIONS_KEPT }, (_, index) => last - index), 1]);
  t.is((await store.service('shop', 'web'))?.desired, last);
});

test("a node's report wakes the controller only when it changes what the node reported", async (t) => {
  const { store, redis } = await storeWithService(t);
  const subscriber = redis.duplicate();
  t.teardown(() => subscriber.disconnect());
  const wakes: string[] = [];
  subscriber.on('message', (_channel: string, reason: string) => wakes.push(reason));
  await subscriber.subscribe(store.keys.wakeChannel());
  const healthy = { replica: 'shop/web/1', revision: 1, health: 'healthy' as const, message: '' };

  await store.report('n1', [healthy]);
  await store.report('n1', [healthy]);
  await store.report('n1', [{ ...healthy, health: 'unhealthy', message: 'exit 1' }]);
  await store.report('n1', []);
  await store.report('n1', []);
  // A marker after the reports: every wake they caused has arrived before it.
  await store.wake('marker');
  await eventually(
    () => Promise.resolve(wakes),
    (seen) => seen.includes('marker'),
  );
  t.deepEqual(wakes, ['report', 'report', 'report', 'marker'], 'the first report, the change, and the emptying');
  t.deepEqual([...(await store.reports(['n1'])).values()], []);
});
