import test from 'ava';
import { BuildFarm, sourceDockerfile, WEBHOOK_SECRET } from '../helpers/build-farm.js';
import { githubHook, githubPushPayload } from '../helpers/forge-hooks.js';

/**
 * The queue's guarantees with real agents (build-farm.ts): a newer push cancels the running build, a dead agent's job is taken over.
 */

let farm: BuildFarm;

test.before(async () => {
  farm = await BuildFarm.start();
});

test.after.always(async () => {
  await farm?.stop();
});

test.serial("two pushes in a row to a branch: the first build is cancelled mid-RUN, the second one's image is the tag", async (t) => {
  const work = await farm.project('twice', [{ sourceType: 'branch', source: 'main', tag: 'latest' }], { concurrency: 1 });
  await work.write({ Dockerfile: sourceDockerfile('RUN echo started && sleep 60') });
  const slow = await work.commit('slow', 1_700_000_100);
  await work.push('main');
  const [first] = await farm.queue(
    'twice',
    githubHook(WEBHOOK_SECRET, 'push', githubPushPayload({ ref: 'refs/heads/main', commit: slow })),
  );
  await farm.logShows(first!, / started$/);
  await work.write({ Dockerfile: sourceDockerfile() });
  const fast = await work.commit('fast', 1_700_000_200);
  await work.push('main');
  const cancelledAt = Date.now();
  const [second] = await farm.queue(
    'twice',
    githubHook(WEBHOOK_SECRET, 'push', githubPushPayload({ ref: 'refs/heads/main', commit: fast })),
  );
  const firstResult = await farm.finished(first!, 20_000);
  t.is(firstResult.state, 'cancelled');
  t.true(Date.now() - cancelledAt < 15_000, 'the RUN step was stopped, not waited for');
  t.like(await farm.finished(second!), { state: 'succeeded', commit: fast });
  t.is((await farm.pullAndRun(`${farm.registry.host}/team/twice:latest`)).output, `${fast} latest`);
});

test.serial('an agent SIGKILLed mid-build loses its lease; the other agent takes the job and finishes it', async (t) => {
  const work = await farm.project('killed', [{ sourceType: 'branch', source: 'main', tag: 'latest' }]);
  await work.write({ Dockerfile: sourceDockerfile('RUN echo started && sleep 5') });
  const commit = await work.commit('slow', 1_700_000_300);
  await work.push('main');
  const [id] = await farm.queue('killed', githubHook(WEBHOOK_SECRET, 'push', githubPushPayload({ ref: 'refs/heads/main', commit })));
  await farm.logShows(id!, / started$/);
  const holder = (await farm.build(id!)).worker;
  const victim = farm.agents[holder.startsWith('a1@') ? 0 : 1]!;
  process.kill(victim.pid!, 'SIGKILL');
  const result = await farm.finished(id!, 60_000);
  t.like(result, { state: 'succeeded', attempt: 2, commit });
  t.not(result.worker.slice(0, 3), holder.slice(0, 3), `taken over by the other agent (${holder} -> ${result.worker})`);
  t.is((await farm.pullAndRun(`${farm.registry.host}/team/killed:latest`)).output, `${commit} latest`);
});
