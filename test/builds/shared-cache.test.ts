import test from 'ava';
import { BuildFarm, sourceDockerfile, WEBHOOK_SECRET } from '../helpers/build-farm.js';
import { githubHook, githubPushPayload } from '../helpers/forge-hooks.js';

/**
 * The build cache shared through the registry: two build-worker agents, each a host of its own (a network
 * namespace and a data directory), and a project with a cache repository.
 */

/** The RUN step's output line in the build log (`#6 0.120 ran-the-step`), not the step's name. */
const RAN = /^#\d+ \d+\.\d+ ran-the-step$/;

let farm: BuildFarm;

test.before(async () => {
  farm = await BuildFarm.start({ hosts: 'namespaces' });
});

test.after.always(async () => {
  await farm?.stop();
});

test.serial('a second build of the same commit on another agent runs no RUN step: its cache comes from the registry', async (t) => {
  const work = await farm.project('shared', [{ sourceType: 'branch', source: 'main', tag: 'latest' }], {
    cacheRepository: 'team/shared-cache',
  });
  await work.write({ Dockerfile: sourceDockerfile('RUN echo ran-the-step && date +%s%N > /stamp') });
  const commit = await work.commit('cached', 1_700_000_400);
  await work.push('main');
  const [first] = await farm.queue('shared', githubHook(WEBHOOK_SECRET, 'push', githubPushPayload({ ref: 'refs/heads/main', commit })));
  const built = await farm.finished(first!);
  t.like(built, { state: 'succeeded', commit });
  const firstLog = await farm.logLines(first!);
  t.true(
    firstLog.some((line) => RAN.test(line)),
    'the first build ran its RUN steps',
  );
  t.true(firstLog.some((line) => line.includes(`exporting cache to registry ${farm.registry.host}/team/shared-cache:branch-main`)));
  const firstImage = await farm.image('team/shared', built.digest);

  const holder = farm.agents[built.worker.startsWith('a1@') ? 0 : 1]!;
  await holder.kill();
  const { builds } = (await farm.admin('POST', `builds/${first!}/retry`)) as { builds: string[] };
  const again = await farm.finished(builds[0]!);
  t.like(again, { state: 'succeeded', commit });
  t.not(again.worker.slice(0, 3), built.worker.slice(0, 3), `built by the other agent (${built.worker}, then ${again.worker})`);

  const log = await farm.logLines(again.id);
  t.false(
    log.some((line) => RAN.test(line)),
    `no RUN step ran:\n${log.join('\n')}`,
  );
  const runSteps = again.steps.filter((step) => / RUN /.test(step.name));
  t.is(runSteps.length, 2, JSON.stringify(again.steps));
  t.true(
    runSteps.every((step) => step.cached),
    JSON.stringify(runSteps),
  );
  const runIds = log.flatMap((line) => /^#(\d+) \[\d+\/\d+\] RUN /.exec(line)?.[1] ?? []);
  t.is(runIds.length, 2);
  for (const id of runIds) t.true(log.includes(`#${id} CACHED`), `step #${id} is CACHED in the log`);
  t.true(log.some((line) => line.includes(`importing cache manifest from ${farm.registry.host}/team/shared-cache:branch-main`)));

  const image = await farm.image('team/shared', again.digest);
  t.deepEqual(image.layers, firstImage.layers, 'the same layers, from the cache');
  t.deepEqual(image.config.rootfs, firstImage.config.rootfs);
  t.deepEqual(image.config.history, firstImage.config.history);
  t.like(image.config.config.Labels, { 'org.opencontainers.image.revision': commit, 'io.berth.build.id': again.id });
});

test.serial("the first build of a new branch takes its cache from the default branch's, since its own does not exist yet", async (t) => {
  for (const agent of farm.agents) if (!agent.running) await agent.restart();
  const rules = [
    { sourceType: 'branch', source: 'main', tag: 'latest' },
    { sourceType: 'branch', source: '/feature-.*/', tag: '{sourceref}' },
  ];
  const work = await farm.project('branching', rules, { cacheRepository: 'team/branching-cache' });
  await work.write({ Dockerfile: 'FROM scratch\nCOPY rootfs/ /\nRUN echo ran-on-main && date +%s%N > /stamp\nCMD ["cat", "/stamp"]\n' });
  const onMain = await work.commit('main', 1_700_000_500);
  await work.push('main');
  const [first] = await farm.queue(
    'branching',
    githubHook(WEBHOOK_SECRET, 'push', githubPushPayload({ ref: 'refs/heads/main', commit: onMain })),
  );
  const built = await farm.finished(first!);
  t.like(built, { state: 'succeeded', commit: onMain });
  t.true((await farm.logLines(first!)).some((line) => / ran-on-main$/.test(line)));
  // The other agent builds the branch: this one's own cache would hit whatever the registry holds.
  await farm.agents[built.worker.startsWith('a1@') ? 0 : 1]!.kill();

  await work.write({ 'README.md': 'not in any COPY\n' });
  const onBranch = await work.commit('a feature', 1_700_000_600);
  await work.push('HEAD:refs/heads/feature-login');
  const hook = githubHook(WEBHOOK_SECRET, 'push', githubPushPayload({ ref: 'refs/heads/feature-login', commit: onBranch }));
  const [second] = await farm.queue('branching', hook);
  const branchBuild = await farm.finished(second!);
  t.like(branchBuild, { state: 'succeeded', commit: onBranch, tags: ['feature-login'] });
  t.not(branchBuild.worker.slice(0, 3), built.worker.slice(0, 3), `built by the other agent (${built.worker}, then ${branchBuild.worker})`);

  const log = await farm.logLines(second!);
  const cache = `${farm.registry.host}/team/branching-cache`;
  t.true(
    log.some((line) => line.endsWith(`no build cache at ${cache}:branch-feature-login yet`)),
    log.join('\n'),
  );
  t.true(log.some((line) => line.includes(`importing cache manifest from ${cache}:branch-main`)));
  t.false(
    log.some((line) => / ran-on-main$/.test(line)),
    `the RUN step did not run:\n${log.join('\n')}`,
  );
  const runStep = branchBuild.steps.find((step) => / RUN /.test(step.name));
  t.like(runStep, { cached: true }, JSON.stringify(branchBuild.steps));
  t.true(log.some((line) => line.includes(`exporting cache to registry ${cache}:branch-feature-login`)));
  const [mainImage, branchImage] = await Promise.all([
    farm.image('team/branching', built.digest),
    farm.image('team/branching', 'feature-login'),
  ]);
  t.deepEqual(branchImage.layers, mainImage.layers, "main's layers, from its cache");
});
