import test from 'ava';
import { place, type PlacementNode, type PlacementRule } from '../../server/deploy/placement.js';

const node = (
  hostname: string,
  labels: Record<string, string> = {},
  availability: PlacementNode['availability'] = 'ready',
  load = 0,
): PlacementNode => ({
  id: `id-${hostname}`,
  hostname,
  labels,
  availability,
  load,
});

const rule = (overrides: Partial<PlacementRule> = {}): PlacementRule => ({
  mode: 'replicated',
  replicas: 3,
  constraints: [],
  maxReplicasPerNode: null,
  publishesPorts: false,
  ...overrides,
});

const nodesOf = (placement: { slots: Record<string, string> }) => Object.values(placement.slots).sort();

test('replicas spread one per node before any node takes a second', (t) => {
  const nodes = [node('a'), node('b'), node('c')];
  t.deepEqual(nodesOf(place(rule(), nodes, {})), ['id-a', 'id-b', 'id-c']);
  t.deepEqual(nodesOf(place(rule({ replicas: 5 }), nodes, {})), ['id-a', 'id-a', 'id-b', 'id-b', 'id-c']);
});

test('the tie between equally used nodes goes to the one with fewer replicas of other services', (t) => {
  const placement = place(rule({ replicas: 1 }), [node('a', {}, 'ready', 4), node('b', {}, 'ready', 1)], {});
  t.deepEqual(placement.slots, { 1: 'id-b' });
});

test('constraints on hostname and labels with == and != choose the eligible nodes', (t) => {
  const nodes = [node('a', { region: 'eu' }), node('b', { region: 'us' }), node('c', { region: 'eu' })];
  const eu = place(
    rule({ replicas: 2, constraints: [{ field: { kind: 'label', name: 'region' }, operator: '==', value: 'eu' }] }),
    nodes,
    {},
  );
  t.deepEqual(nodesOf(eu), ['id-a', 'id-c']);
  const notA = place(rule({ replicas: 2, constraints: [{ field: { kind: 'hostname' }, operator: '!=', value: 'a' }] }), nodes, {});
  t.deepEqual(nodesOf(notA), ['id-b', 'id-c']);
  const missingLabel = place(
    rule({ replicas: 1, constraints: [{ field: { kind: 'label', name: 'gpu' }, operator: '!=', value: 'yes' }] }),
    nodes,
    {},
  );
  t.is(nodesOf(missingLabel).length, 1, 'a node without the label satisfies !=');
});

test('no eligible node leaves the replicas unplaced with the reason', (t) => {
  const placement = place(rule({ constraints: [{ field: { kind: 'hostname' }, operator: '==', value: 'nowhere' }] }), [node('a')], {});
  t.deepEqual(placement, { slots: {}, unplaced: ['1', '2', '3'], reason: 'no ready node satisfies the placement constraints' });
  t.is(place(rule(), [], {}).reason, 'no ready node');
});

test('max_replicas_per_node and published ports cap each node', (t) => {
  const nodes = [node('a'), node('b')];
  const capped = place(rule({ replicas: 3, maxReplicasPerNode: 1 }), nodes, {});
  t.deepEqual(nodesOf(capped), ['id-a', 'id-b']);
  t.deepEqual(capped.unplaced, ['3']);
  t.regex(capped.reason ?? '', /1 replica\(s\) over the limit of 1 per node on 2 eligible node\(s\)/);
  t.deepEqual(place(rule({ replicas: 3, publishesPorts: true }), nodes, {}).unplaced, ['3']);
});

test('replicas stay where they are while their node is eligible; a down or drained node gives them up', (t) => {
  const current = { 1: 'id-a', 2: 'id-b', 3: 'id-c' };
  t.deepEqual(place(rule(), [node('a'), node('b'), node('c'), node('d')], current).slots, current);
  const afterDown = place(rule(), [node('a'), node('b', {}, 'down'), node('c'), node('d')], current).slots;
  t.deepEqual(afterDown, { 1: 'id-a', 2: 'id-d', 3: 'id-c' });
  const afterDrain = place(rule(), [node('a'), node('b'), node('c', {}, 'drain')], current).slots;
  t.is(afterDrain['3'], 'id-a');
});

test('scaling down keeps the lowest slots, scaling up adds slots on the least used nodes', (t) => {
  const nodes = [node('a'), node('b'), node('c')];
  t.deepEqual(place(rule({ replicas: 1 }), nodes, { 1: 'id-b', 2: 'id-a', 3: 'id-c' }).slots, { 1: 'id-b' });
  t.deepEqual(place(rule({ replicas: 4 }), nodes, { 1: 'id-b', 2: 'id-a', 3: 'id-c' }).slots, {
    1: 'id-b',
    2: 'id-a',
    3: 'id-c',
    4: 'id-a',
  });
});

test('a global service runs once on every eligible node', (t) => {
  const nodes = [node('a', { edge: 'yes' }), node('b'), node('c', { edge: 'yes' }), node('d', { edge: 'yes' }, 'down')];
  const placement = place(
    rule({ mode: 'global', constraints: [{ field: { kind: 'label', name: 'edge' }, operator: '==', value: 'yes' }] }),
    nodes,
    {},
  );
  t.deepEqual(placement.slots, { 'id-a': 'id-a', 'id-c': 'id-c' });
});

test("a global service's replica stays on a node taken for down that ran it; a drained node or one the constraints no longer allow gives it up", (t) => {
  const edge = { field: { kind: 'label' as const, name: 'edge' }, operator: '==' as const, value: 'yes' };
  const nodes = [
    node('a', { edge: 'yes' }),
    node('b', { edge: 'yes' }, 'down'),
    node('c', { edge: 'yes' }, 'down'),
    node('d', { edge: 'yes' }, 'drain'),
    node('e', { edge: 'no' }, 'down'),
  ];
  const current = { 'id-a': 'id-a', 'id-b': 'id-b', 'id-d': 'id-d', 'id-e': 'id-e' };
  const placement = place(rule({ mode: 'global', constraints: [edge] }), nodes, current);
  t.deepEqual(placement.slots, { 'id-a': 'id-a', 'id-b': 'id-b' }, 'b keeps its replica; c, down, never had one');
  t.is(placement.reason, null);
  t.deepEqual(
    place(rule({ replicas: 1 }), [node('a'), node('b', {}, 'down')], { 1: 'id-b' }).slots,
    { 1: 'id-a' },
    'a replicated replica moves',
  );
});
