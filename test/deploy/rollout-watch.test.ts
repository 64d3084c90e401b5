import test from 'ava';
import { rolloutChanges, type WatchedService } from '../../server/deploy/rollout-watch.js';

function look(status: string, healths: [string, string]): WatchedService {
  return {
    service: 'shop/web',
    desired: 1,
    rollout: { revision: 1, target: 1, status, reason: null },
    replicas: healths.map((health, index) => ({ slot: String(index + 1), node: `n${index + 1}`, revision: 1, health, message: '' })),
  };
}

test('the last replica turning healthy and the rollout ending in one look print the replica, the count, then the end', (t) => {
  const before = look('rolling', ['healthy', 'starting']);
  t.deepEqual(rolloutChanges(before, look('succeeded', ['healthy', 'healthy'])), [
    'shop/web.2@n2: revision 1 healthy',
    'shop/web: 2 of 2 replicas healthy on revision 1',
    'shop/web: revision 1 succeeded',
  ]);
});

test('a look that changes nothing prints nothing; a first look prints the phase, every replica and the count', (t) => {
  const rolling = look('rolling', ['healthy', 'starting']);
  t.deepEqual(rolloutChanges(rolling, rolling), []);
  t.deepEqual(rolloutChanges(undefined, rolling), [
    'shop/web: rolling out revision 1',
    'shop/web.1@n1: revision 1 healthy',
    'shop/web.2@n2: revision 1 starting',
    'shop/web: 1 of 2 replicas healthy on revision 1',
  ]);
});
