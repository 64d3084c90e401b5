import test from 'ava';
import { createHmac } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { ADMIN } from '../helpers/auth-registry.js';
import { BuildFarm, EVENTS_SECRET, GIT_TOKEN, sourceDockerfile, WEBHOOK_SECRET } from '../helpers/build-farm.js';
import path from 'node:path';
import { run } from '../helpers/exec.js';
import { githubHook, githubPushPayload, giteaHook, gitlabHook, gitlabPushPayload } from '../helpers/forge-hooks.js';

const API_KEY = 'sk-live-0123456789abcdef';
const CLI = fileURLToPath(new URL('../../server/cli.js', import.meta.url));

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

test.serial(
  "berth build start builds the ref's newest commit; logs -f follows it to the end; build events and metrics report it",
  async (t) => {
    const work = await farm.project('watched', [{ sourceType: 'branch', source: 'main', tag: 'latest' }]);
    await work.write({ Dockerfile: sourceDockerfile('RUN echo watching the build && sleep 2') });
    const commit = await work.commit('watched', 1_700_000_500);
    await work.push('main');
    const berth = (...args: string[]) =>
      run(process.execPath, [CLI, ...args, '--registry', farm.registry.url], {
        allowFailure: true,
        env: { BERTH_ADMIN_USER: ADMIN.username, BERTH_ADMIN_PASSWORD: ADMIN.password },
        timeoutMs: 90_000,
      });
    const started = await berth('build', 'start', 'watched', '--ref', 'main');
    t.is(started.code, 0, started.stderr);
    const [id] = (JSON.parse(started.stdout) as { builds: string[] }).builds;
    const followed = await berth('build', 'logs', '-f', id!);
    t.is(followed.code, 0, followed.stderr);
    t.regex(followed.stdout, /watching the build/);
    t.regex(followed.stdout, /latest: digest: sha256:[0-9a-f]{64}/);
    const record = await farm.build(id!);
    t.like(record, { state: 'succeeded', commit, tags: ['latest'] });
    t.true(record.steps.some((step) => step.name.includes('RUN echo watching the build') && step.seconds >= 2));

    await farm.receiver.waitFor(() =>
      farm.receiver.deliveries.some((delivery) => delivery.body.includes('"build.succeeded"') && delivery.body.includes(`"id":"${id}"`)),
    );
    const events = farm.receiver.deliveries
      .filter((delivery) => delivery.body.includes(`"id":"${id}"`))
      .map((delivery) => {
        const signature = `sha256=${createHmac('sha256', EVENTS_SECRET).update(delivery.body).digest('hex')}`;
        t.is(delivery.headers['x-berth-signature-256'], signature);
        return (
          JSON.parse(delivery.body) as { events: Array<{ action: string; target: { repository: string; digest?: string; tag?: string } }> }
        ).events[0]!;
      });
    t.deepEqual(
      events.map((event) => event.action),
      ['build.started', 'build.succeeded'],
    );
    t.like(events[1]!.target, { repository: 'team/watched', digest: record.digest, tag: 'latest' });

    const metrics = await (await fetch(`${farm.registry.url}/metrics`)).text();
    t.regex(metrics, /^berth_build_duration_seconds_count\{outcome="succeeded"\} [1-9]\d*$/m);
    t.regex(metrics, /^berth_build_queue_wait_seconds_count [1-9]\d*$/m);
    t.regex(metrics, /^berth_build_queue_depth\{queue="builds"\} 0$/m);
  },
);
