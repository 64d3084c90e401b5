import test from 'ava';
import { BuildFarm, GIT_TOKEN, sourceDockerfile, WEBHOOK_SECRET } from '../helpers/build-farm.js';
import path from 'node:path';
import { run } from '../helpers/exec.js';
import { githubHook, githubPushPayload, giteaHook, gitlabHook, gitlabPushPayload } from '../helpers/forge-hooks.js';

const API_KEY = 'sk-live-0123456789abcdef';

/**
 * Forge pushes built by agents (build-farm.ts): the images under the rules' tags as docker pulls and runs them, and build secrets kept out of images and logs.
 */

let farm: BuildFarm;

test.before(async () => {
  farm = await BuildFarm.start();
});

test.after.always(async () => {
  await farm?.stop();
});

test.serial("signed GitHub, Gitea and GitLab pushes become images under the rules' tags that docker pulls and runs", async (t) => {
  const work = await farm.project('forges', [
    { sourceType: 'branch', source: 'main', tag: 'latest,sha-{short_sha}' },
    { sourceType: 'tag', source: '/^v([0-9.]+)$/', tag: '{\\1}' },
    { sourceType: 'branch', source: 'dev', tag: '{sourceref}' },
  ]);
  await work.write({ Dockerfile: sourceDockerfile() });
  const main = await work.commit('first commit\n\nwith a body', 1_700_000_000);
  await work.push('main');
  const tagObject = await work.tag('v1.4');
  await work.push('v1.4');
  await work.push('main:dev');

  const [fromGithub] = await farm.queue(
    'forges',
    githubHook(WEBHOOK_SECRET, 'push', githubPushPayload({ ref: 'refs/heads/main', commit: main })),
  );
  const [fromGitea] = await farm.queue(
    'forges',
    giteaHook(WEBHOOK_SECRET, 'push', githubPushPayload({ ref: 'refs/tags/v1.4', commit: main, after: tagObject })),
  );
  const [fromGitlab] = await farm.queue(
    'forges',
    gitlabHook(WEBHOOK_SECRET, 'Push Hook', gitlabPushPayload({ ref: 'refs/heads/dev', commit: main })),
  );
  const results = await Promise.all([fromGithub!, fromGitea!, fromGitlab!].map((id) => farm.finished(id)));
  t.deepEqual(
    results.map(({ state, tags, commit, error }) => ({ state, tags, commit, error })),
    [
      { state: 'succeeded', tags: ['latest', `sha-${main.slice(0, 7)}`], commit: main, error: '' },
      { state: 'succeeded', tags: ['1.4'], commit: main, error: '' },
      { state: 'succeeded', tags: ['dev'], commit: main, error: '' },
    ],
  );
  const image = await farm.pullAndRun(`${farm.registry.host}/team/forges:sha-${main.slice(0, 7)}`);
  t.is(image.output, `${main} latest`);
  t.like(image.labels, {
    'org.opencontainers.image.revision': main,
    'org.opencontainers.image.source': farm.git.url('forges'),
    'io.berth.build.ref': 'refs/heads/main',
  });
  t.regex(image.history, new RegExp(`SOURCE_COMMIT=${main}`));
  t.is((await farm.pullAndRun(`${farm.registry.host}/team/forges:1.4`)).output, `${main} 1.4`);
  t.is((await farm.pullAndRun(`${farm.registry.host}/team/forges:dev`)).output, `${main} dev`);
  t.is(image.created, '2023-11-14T22:13:20Z', 'SOURCE_DATE_EPOCH is the commit time');
  const log = await farm.logLines(fromGithub!);
  t.true(log.some((line) => line.includes(`fetching ${main}`)));
  t.false(JSON.stringify(log).includes(GIT_TOKEN));
});

test.serial('a build secret reaches RUN --mount=type=secret and is in no layer, no history and no log', async (t) => {
  const work = await farm.project('secret', [{ sourceType: 'branch', source: 'main', tag: 'latest' }]);
  await farm.admin('PUT', 'builds/projects/secret/secrets/api_key', { value: API_KEY });
  await work.write({
    Dockerfile: sourceDockerfile(
      `RUN --mount=type=secret,id=api_key test "$(cat /run/secrets/api_key)" = "${API_KEY.slice(0, 8)}$(cut -c9- /run/secrets/api_key)" && echo "seen: $(cat /run/secrets/api_key)" && wc -c < /run/secrets/api_key > /secret-length`,
    ),
  });
  const commit = await work.commit('with a secret', 1_700_000_400);
  await work.push('main');
  const [id] = await farm.queue('secret', githubHook(WEBHOOK_SECRET, 'push', githubPushPayload({ ref: 'refs/heads/main', commit })));
  t.like(await farm.finished(id!), { state: 'succeeded' });
  const reference = `${farm.registry.host}/team/secret:latest`;
  const image = await farm.pullAndRun(reference);
  t.is(
    (await farm.docker.docker(['run', '--rm', '--network', 'none', reference, 'cat', '/secret-length'])).stdout.trim(),
    String(API_KEY.length),
  );
  t.false(image.history.includes(API_KEY));
  const saved = path.join(farm.scratch, 'secret.tar');
  await farm.docker.docker(['save', '-o', saved, reference]);
  const layers = await run('tar', ['-xOf', saved]);
  t.false(layers.stdout.includes(API_KEY), 'no layer holds the secret');
  const log = (await farm.logLines(id!)).join('\n');
  t.regex(log, /seen: \*\*\*/);
  t.false(log.includes(API_KEY));
  t.false(farm.agents.some((agent) => agent.logs.includes(API_KEY)));
  t.false(farm.registry.logs.includes(API_KEY));
});
