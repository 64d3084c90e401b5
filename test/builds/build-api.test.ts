import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { run } from '../helpers/exec.js';
import { githubHook, githubPushPayload, giteaHook, gitlabHook, gitlabPushPayload, postHook } from '../helpers/forge-hooks.js';
import { RegistryProcess } from '../helpers/registry-process.js';

/**
 * Build projects, forge webhooks and the build queue on a real registry (its embedded Redis), without any
 * worker: what is queued, superseded, cancelled and kept across a restart, as the admin API and CLI show it.
 */

const CLI = fileURLToPath(new URL('../../server/cli.js', import.meta.url));
const SECRET = 'a-webhook-secret-of-enough-length';
const COMMIT_A = 'a'.repeat(40);
const COMMIT_B = 'b'.repeat(40);

let registry: RegistryProcess;

test.before(async () => {
  registry = await RegistryProcess.start();
});

test.after.always(async () => {
  await registry?.destroy();
});

function berth(args: string[], input?: string) {
  return run(process.execPath, [CLI, ...args, '--registry', registry.url], { allowFailure: true, input, timeoutMs: 60_000 });
}

async function admin(method: string, path: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${registry.url}/admin/v1/${path}`, {
    method,
    headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

interface BuildView {
  id: string;
  state: string;
  commit: string;
  tagTemplates: string[];
  ref: { type: string; name: string };
  trigger: string;
}

async function builds(project: string): Promise<BuildView[]> {
  return (await admin('GET', `builds?project=${project}`)).body.builds as BuildView[];
}

async function createProject(name: string, rules?: object[]): Promise<void> {
  const created = await admin('POST', `builds/projects/${name}`, {
    repository: `team/${name}`,
    git: { url: 'http://127.0.0.1:9/app.git', credentials: { type: 'token', token: 'ghp_never-shown' } },
    webhookSecret: SECRET,
    ...(rules ? { rules } : {}),
  });
  if (created.status !== 201) throw new Error(JSON.stringify(created));
}

test.serial(
  'berth build project create prints the webhook secret once; show and ls never return it, the git token or secret values',
  async (t) => {
    const created = await berth(
      [
        'build',
        'project',
        'create',
        'cli-app',
        '--repository',
        'team/cli-app',
        '--git-url',
        'https://git.example/app.git',
        '--token-stdin',
      ],
      'ghp_cli-token-value',
    );
    t.is(created.code, 0, created.stderr);
    const project = JSON.parse(created.stdout) as { webhookSecret: string; rules: object[]; git: { credentials: string } };
    t.regex(project.webhookSecret, /^[A-Za-z0-9_-]{32}$/);
    t.deepEqual(project.rules, [
      {
        sourceType: 'branch',
        source: 'main',
        tag: 'latest',
        dockerfile: 'Dockerfile',
        context: '.',
        buildArgs: {},
        target: null,
        cache: true,
      },
    ]);
    t.is(project.git.credentials, 'token');

    const secret = await berth(['build', 'secret', 'set', 'cli-app', 'npm_token'], 'npm-secret-value');
    t.is(secret.code, 0, secret.stderr);
    const shown = await berth(['build', 'project', 'show', 'cli-app']);
    const listed = await berth(['build', 'project', 'ls']);
    for (const output of [shown.stdout, listed.stdout]) {
      t.true(output.includes('"npm_token"'), output);
      for (const hidden of [project.webhookSecret, 'ghp_cli-token-value', 'npm-secret-value']) t.false(output.includes(hidden));
    }
    t.false(registry.logs.includes('ghp_cli-token-value') || registry.logs.includes('npm-secret-value'));

    const again = await berth(['build', 'project', 'create', 'cli-app', '--repository', 'team/cli-app', '--git-url', 'https://x/y.git']);
    t.is(again.code, 1);
    t.is(again.stderr, 'berth: project cli-app exists\n');
    const badRule = await admin('POST', 'builds/projects/bad-rule', {
      repository: 'team/x',
      git: { url: 'https://x/y.git' },
      rules: [{ sourceType: 'branch', source: '/[unclosed/', tag: 'latest' }],
    });
    t.is(badRule.status, 400);
    t.regex(JSON.stringify(badRule.body), /rules\.0\.source: a \/regex\/ must be a valid regular expression/);
  },
);

test.serial(
  'berth build project create --ssh-key takes a deploy key and pinned host keys; the key is never shown; host keys alone are refused',
  async (t) => {
    const directory = await mkdtemp(join(tmpdir(), 'berth-build-ssh-'));
    t.teardown(() => rm(directory, { recursive: true, force: true }));
    const key = join(directory, 'deploy-key');
    const knownHosts = join(directory, 'known_hosts');
    await writeFile(key, '-----BEGIN OPENSSH PRIVATE KEY-----\nnever-shown-key-material\n-----END OPENSSH PRIVATE KEY-----\n');
    await writeFile(knownHosts, 'git.example ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHostKeyOfGitExample\n');
    const base = ['build', 'project', 'create', 'ssh-app', '--repository', 'team/ssh-app', '--git-url', 'ssh://git@git.example/app.git'];

    const alone = await berth([...base, '--ssh-known-hosts', knownHosts]);
    t.is(alone.code, 2);
    t.is(alone.stderr, 'berth: --ssh-known-hosts goes with --ssh-key\n');
    const missing = await berth([...base, '--ssh-key', join(directory, 'absent')]);
    t.is(missing.code, 2);
    t.regex(missing.stderr, /cannot read .*absent/);

    const created = await berth([...base, '--ssh-key', key, '--ssh-known-hosts', knownHosts]);
    t.is(created.code, 0, created.stderr);
    t.is((JSON.parse(created.stdout) as { git: { credentials: string } }).git.credentials, 'ssh');
    const shown = await berth(['build', 'project', 'show', 'ssh-app']);
    t.false(shown.stdout.includes('never-shown-key-material'), shown.stdout);
    t.false(registry.logs.includes('never-shown-key-material'));
  },
);

test.serial('signed GitHub, Gitea and GitLab pushes each queue one build per matching rule, with the tags the rule gives', async (t) => {
  await createProject('forges', [
    { sourceType: 'branch', source: 'main', tag: 'latest,sha-{short_sha}' },
    { sourceType: 'tag', source: '/^v([0-9]+)\\.([0-9]+)$/', tag: '{\\1}.{\\2},{sourceref}' },
    { sourceType: 'branch', source: '/^feature\\/(.+)$/', tag: 'feature-{\\1}' },
  ]);
  const github = await postHook(
    registry.url,
    'forges',
    githubHook(SECRET, 'push', githubPushPayload({ ref: 'refs/heads/main', commit: COMMIT_A })),
  );
  t.is(github.status, 202);
  const tagObject = 'c'.repeat(40);
  const gitea = await postHook(
    registry.url,
    'forges',
    giteaHook(SECRET, 'push', githubPushPayload({ ref: 'refs/tags/v1.2', commit: COMMIT_B, after: tagObject })),
  );
  t.is(gitea.status, 202);
  const gitlab = await postHook(
    registry.url,
    'forges',
    gitlabHook(SECRET, 'Push Hook', gitlabPushPayload({ ref: 'refs/heads/feature/login', commit: COMMIT_A })),
  );
  t.is(gitlab.status, 202);
  const queued = (await builds('forges')).reverse();
  t.deepEqual(
    queued.map(({ state, commit, tagTemplates, trigger, ref }) => ({
      state,
      commit,
      tagTemplates,
      trigger,
      ref: `${ref.type}:${ref.name}`,
    })),
    [
      { state: 'queued', commit: COMMIT_A, tagTemplates: ['latest', 'sha-{short_sha}'], trigger: 'github', ref: 'branch:main' },
      // The annotated tag's commit (head_commit.id), not the tag object.
      { state: 'queued', commit: COMMIT_B, tagTemplates: ['1.2', 'v1.2'], trigger: 'gitea', ref: 'tag:v1.2' },
      { state: 'queued', commit: COMMIT_A, tagTemplates: ['feature-login'], trigger: 'gitlab', ref: 'branch:feature/login' },
    ],
  );
});

test.serial('bad or missing signatures are refused 401/403, and pings, replays, deletions and other events queue nothing', async (t) => {
  await createProject('guarded');
  const push = githubPushPayload({ ref: 'refs/heads/main', commit: COMMIT_A });
  const cases: Array<[string, ReturnType<typeof githubHook>, number]> = [];
  const wrong = githubHook('not-the-secret-at-all', 'push', push);
  cases.push(['GitHub, wrong secret', wrong, 403]);
  const missing = githubHook(SECRET, 'push', push);
  delete missing.headers['X-Hub-Signature-256'];
  cases.push(['GitHub, no signature', missing, 401]);
  const tampered = githubHook(SECRET, 'push', push);
  tampered.body = tampered.body.replace(COMMIT_A, COMMIT_B);
  cases.push(['GitHub, body changed after signing', tampered, 403]);
  cases.push(['Gitea, wrong secret', giteaHook('another-secret-entirely', 'push', push), 403]);
  const noGitlabToken = gitlabHook(SECRET, 'Push Hook', gitlabPushPayload({ ref: 'refs/heads/main', commit: COMMIT_A }));
  delete noGitlabToken.headers['X-Gitlab-Token'];
  cases.push(['GitLab, no token', noGitlabToken, 401]);
  cases.push([
    'GitLab, wrong token',
    gitlabHook(`${SECRET}x`, 'Push Hook', gitlabPushPayload({ ref: 'refs/heads/main', commit: COMMIT_A })),
    403,
  ]);
  for (const [name, hook, status] of cases) {
    const answer = await postHook(registry.url, 'guarded', hook);
    t.is(answer.status, status, name);
    t.regex(String((answer.body.errors as Array<{ code: string }>)[0]?.code), /^SIGNATURE_(MISSING|INVALID)$/, name);
  }
  t.deepEqual(await builds('guarded'), []);

  const ping = await postHook(registry.url, 'guarded', githubHook(SECRET, 'ping', { zen: 'Keep it logically awesome.' }));
  t.deepEqual(ping, { status: 200, body: { status: 'pong' } });
  const issue = await postHook(registry.url, 'guarded', githubHook(SECRET, 'issues', { action: 'opened' }));
  t.deepEqual(issue.body, { status: 'ignored', reason: 'issues events start no build' });
  const deletion = await postHook(
    registry.url,
    'guarded',
    githubHook(SECRET, 'push', githubPushPayload({ ref: 'refs/tags/v1', commit: null })),
  );
  t.deepEqual(deletion.body, { status: 'ignored', reason: 'tag v1 was deleted' });
  const gitlabDeletion = await postHook(
    registry.url,
    'guarded',
    gitlabHook(SECRET, 'Tag Push Hook', gitlabPushPayload({ ref: 'refs/tags/v1', commit: null })),
  );
  t.deepEqual(gitlabDeletion.body, { status: 'ignored', reason: 'tag v1 was deleted' });
  const otherBranch = await postHook(
    registry.url,
    'guarded',
    githubHook(SECRET, 'push', githubPushPayload({ ref: 'refs/heads/dev', commit: COMMIT_A })),
  );
  t.deepEqual(otherBranch.body, { status: 'ignored', reason: 'no rule builds branch dev' });
  t.deepEqual(await builds('guarded'), []);

  const first = githubHook(SECRET, 'push', push, 'delivery-1');
  t.is((await postHook(registry.url, 'guarded', first)).status, 202);
  const replay = await postHook(registry.url, 'guarded', first);
  t.deepEqual(replay, { status: 200, body: { status: 'duplicate' } });
  t.is((await builds('guarded')).length, 1);

  const huge = githubHook(SECRET, 'push', { ...push, padding: 'x'.repeat(1024 * 1024) });
  const tooLarge = await postHook(registry.url, 'guarded', huge);
  t.is(tooLarge.status, 413);
  const unknown = await postHook(registry.url, 'no-such-project', githubHook(SECRET, 'push', push));
  t.is(unknown.status, 404);
  const noForge = await postHook(registry.url, 'guarded', { headers: { 'Content-Type': 'application/json' }, body: '{}' });
  t.is(noForge.status, 400);
});

test.serial('a newer push to the same rule and ref supersedes the queued build; cancel and retry through the CLI', async (t) => {
  await createProject('supersede');
  const hook = (commit: string) => githubHook(SECRET, 'push', githubPushPayload({ ref: 'refs/heads/main', commit }));
  await postHook(registry.url, 'supersede', hook(COMMIT_A));
  await postHook(registry.url, 'supersede', hook(COMMIT_B));
  const [newer, older] = await builds('supersede');
  t.like(older, { commit: COMMIT_A, state: 'superseded' });
  t.like(newer, { commit: COMMIT_B, state: 'queued' });

  const cancelled = await berth(['build', 'cancel', newer!.id]);
  t.is(cancelled.code, 0, cancelled.stderr);
  t.deepEqual(JSON.parse(cancelled.stdout), { id: newer!.id, state: 'cancelled' });
  const retried = await berth(['build', 'retry', newer!.id]);
  t.is(retried.code, 0, retried.stderr);
  const [retry] = (JSON.parse(retried.stdout) as { builds: string[] }).builds;
  const listed = await berth(['build', 'ls', '--project', 'supersede', '--state', 'queued']);
  t.is(listed.code, 0, listed.stderr);
  t.like((JSON.parse(listed.stdout) as { builds: BuildView[] }).builds, [{ id: retry, commit: COMMIT_B, trigger: 'retry' }]);

  const started = await berth(['build', 'start', 'supersede', '--ref', 'main']);
  t.is(started.code, 0, started.stderr);
  const noRule = await berth(['build', 'start', 'supersede', '--ref', 'dev']);
  t.is(noRule.code, 1);
  t.is(noRule.stderr, 'berth: no rule of supersede builds branch dev\n');
  const [manual, retryNow] = await builds('supersede');
  t.like(manual, { trigger: 'manual', commit: '', state: 'queued' });
  t.like(retryNow, { id: retry, state: 'superseded' });
  const unknown = await berth(['build', 'cancel', '99999']);
  t.is(unknown.stderr, 'berth: no build 99999\n');
});

test.serial('queued builds survive a registry restart', async (t) => {
  await createProject('durable');
  const hook = githubHook(SECRET, 'push', githubPushPayload({ ref: 'refs/heads/main', commit: COMMIT_A }), 'durable-delivery');
  const queued = await postHook(registry.url, 'durable', hook);
  t.is(queued.status, 202);
  await registry.stop('SIGKILL');
  registry = await RegistryProcess.start({ dataDir: registry.dataDir });
  t.like(await builds('durable'), [{ id: (queued.body.builds as string[])[0], state: 'queued', commit: COMMIT_A }]);
  t.deepEqual((await postHook(registry.url, 'durable', hook)).body, { status: 'duplicate' });
  const metrics = await (await fetch(`${registry.url}/metrics`)).text();
  t.regex(metrics, /^berth_build_queue_depth\{queue="builds"\} [1-9]\d*$/m);
});
