import test from 'ava';
import { NodePullAccess, type MintedPullToken } from '../../runtime-agent/node/node-pull-access.js';

/** A node's pull access over a fake registry that mints `token-1`, `token-2`, ... and counts the requests. */
function fixture(expiresIn: number | null = 300) {
  let now = 1_000_000;
  let minted = 0;
  let fail = false;
  const access = new NodePullAccess(
    async (): Promise<MintedPullToken> => {
      minted++;
      if (fail) throw new Error('the registry cannot be reached');
      return { token: expiresIn === null ? null : `token-${minted}`, expiresIn };
    },
    () => now,
  );
  const token = async () => {
    if (access.access.type !== 'scoped-token') throw new Error('not a scoped token');
    return access.access.token();
  };
  return {
    access,
    token,
    advance: (ms: number) => (now += ms),
    minted: () => minted,
    failNext: (value: boolean) => (fail = value),
  };
}

test('a node pulls with one token until half its lifetime has passed, then asks the registry for a new one', async (t) => {
  const node = fixture(300);
  t.is(await node.token(), 'token-1');
  node.advance(149_000);
  t.is(await node.token(), 'token-1', 'reused within half its lifetime');
  node.advance(2_000);
  t.is(await node.token(), 'token-2', 'renewed past half its lifetime');
  t.is(node.minted(), 2);
});

test("a change of the node's assignments makes the next pull ask for a token covering them", async (t) => {
  const node = fixture(300);
  t.is(await node.token(), 'token-1');
  node.access.assignmentsChanged(7);
  t.is(await node.token(), 'token-2');
  t.is(await node.token(), 'token-2', 'reused while the assignments stay at that version');
  node.access.assignmentsChanged(7);
  t.is(await node.token(), 'token-2', 'the same version again changes nothing');
});

test('pulls that need a token at the same time share one request; a failed request is asked again by the next pull', async (t) => {
  const node = fixture(300);
  const tokens = await Promise.all([node.token(), node.token(), node.token()]);
  t.deepEqual(tokens, ['token-1', 'token-1', 'token-1']);
  t.is(node.minted(), 1);
  node.access.assignmentsChanged(2);
  node.failNext(true);
  await t.throwsAsync(node.token(), { message: 'the registry cannot be reached' });
  node.failNext(false);
  t.is(await node.token(), 'token-3');
});

test('a registry without auth answers no token: the node pulls anonymously and asks again only when its assignments change', async (t) => {
  const node = fixture(null);
  t.is(await node.token(), null);
  node.advance(3_600_000);
  t.is(await node.token(), null);
  t.is(node.minted(), 1);
  node.access.assignmentsChanged(1);
  t.is(await node.token(), null);
  t.is(node.minted(), 2);
});
