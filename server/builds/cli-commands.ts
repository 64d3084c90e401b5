import type { Command } from 'commander';
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { parse as parseYaml } from 'yaml';
import { type AdminClient, CliError, count, enc, print, run, withApi } from '../admin-cli.js';

interface ProjectOptions {
  repository?: string;
  gitUrl?: string;
  defaultBranch?: string;
  tokenStdin?: boolean;
  tokenUser?: string;
  sshKey?: string;
  sshKnownHosts?: string;
  webhookSecretStdin?: boolean;
  rules?: string;
  concurrency?: string;
  cancelRunning: boolean;
  cacheRepository?: string;
}

const FOLLOW_POLL_MS = 500;

/**
 * `berth build ...`: automated builds, a client of the registry's admin API. Git credentials and secret
 * values are read from standard input or a file, never from the command line (where `ps` would show them).
 */
export function registerBuildCommands(program: Command): void {
  const build = program.command('build').description('automated builds: projects, builds, logs and worker tokens');
  const project = build.command('project').description('build projects: a repository, a git source, rules');
  for (const verb of ['create', 'update'] as const) {
    projectOptions(withApi(project.command(`${verb} <name>`)))
      .description(
        verb === 'create'
          ? 'create a project; prints its webhook URL path and secret (shown once)'
          : "replace a project's settings (credentials and webhook secret kept unless given)",
      )
      .action(
        run(async (api, name: string, options: ProjectOptions) =>
          print(await api.call(verb === 'create' ? 'POST' : 'PUT', `builds/projects/${enc(name)}`, await projectBody(options))),
        ),
      );
  }
  withApi(project.command('ls'))
    .description('list projects')
    .action(run(async (api) => print(await api.call('GET', 'builds/projects'))));
  withApi(project.command('show <name>'))
    .description('a project (credentials and secrets never shown)')
    .action(run(async (api, name: string) => print(await api.call('GET', `builds/projects/${enc(name)}`))));
  withApi(project.command('rm <name>'))
    .description('remove a project and its secrets')
    .action(run(async (api, name: string) => print(await api.call('DELETE', `builds/projects/${enc(name)}`))));

  const secret = build.command('secret').description('write-only secrets for RUN --mount=type=secret,id=ID');
  withApi(secret.command('set <project> <id>'))
    .description('set a secret from standard input')
    .action(
      run(async (api, name: string, id: string) =>
        print(await api.call('PUT', `builds/projects/${enc(name)}/secrets/${enc(id)}`, { value: await readStdin() })),
      ),
    );
  withApi(secret.command('rm <project> <id>'))
    .description('remove a secret')
    .action(
      run(async (api, name: string, id: string) => print(await api.call('DELETE', `builds/projects/${enc(name)}/secrets/${enc(id)}`))),
    );

  withApi(build.command('start <project>'))
    .description("build a ref's newest commit now, with every rule that matches it")
    .requiredOption('--ref <name>', 'a branch (or, with --tag, a tag)')
    .option('--tag', 'the ref is a tag')
    .action(
      run(async (api, name: string, options: { ref: string; tag?: boolean }) =>
        print(await api.call('POST', `builds/projects/${enc(name)}/builds`, { ref: options.ref, type: options.tag ? 'tag' : 'branch' })),
      ),
    );
  withApi(build.command('ls'))
    .description('builds, newest first')
    .option('--project <name>', 'only this project')
    .option('--state <state>', 'queued, running, succeeded, failed, cancelled or superseded')
    .option('--limit <n>', 'at most this many', '50')
    .action(
      run(async (api, options: { project?: string; state?: string; limit: string }) => {
        const query = new URLSearchParams({ limit: String(count(options.limit)) });
        if (options.project) query.set('project', options.project);
        if (options.state) query.set('state', options.state);
        print(await api.call('GET', `builds?${query}`));
      }),
    );
  withApi(build.command('inspect <id>'))
    .description('one build: rule, ref, commit, state, steps, digest, tags, error')
    .action(run(async (api, id: string) => print(await api.call('GET', `builds/${enc(id)}`))));
  withApi(build.command('logs <id>'))
    .description("a build's log")
    .option('-f, --follow', 'keep printing until the build ends')
    .action(run(async (api, id: string, options: { follow?: boolean }) => followLogs(api, id, options.follow === true)));
  withApi(build.command('cancel <id>'))
    .description('cancel a queued build, or stop a running one')
    .action(run(async (api, id: string) => print(await api.call('POST', `builds/${enc(id)}/cancel`))));
  withApi(build.command('retry <id>'))
    .description('build the same rule and commit again')
    .action(run(async (api, id: string) => print(await api.call('POST', `builds/${enc(id)}/retry`))));
  withApi(build.command('worker-token'))
    .description('issue a token for `berth-agent daemon --build-worker --registry URL --worker-token T` (printed once)')
    .option('--name <name>', 'names the workers using it', 'worker')
    .option('--ttl <seconds>', 'how long it is valid')
    .action(
      run(async (api, options: { name: string; ttl?: string }) =>
        print(
          await api.call('POST', 'build-workers/tokens', {
            name: options.name,
            ...(options.ttl ? { ttlSeconds: count(options.ttl) } : {}),
          }),
        ),
      ),
    );
}

function projectOptions(command: Command): Command {
  return command
    .requiredOption('--repository <name>', 'the registry repository built images go to')
    .requiredOption('--git-url <url>', 'the clone URL')
    .option('--default-branch <branch>', 'the branch the default rule builds as latest', 'main')
    .option('--token-stdin', 'read an HTTPS token for the clone URL from standard input')
    .option('--token-user <name>', 'the user name sent with the token', 'x-access-token')
    .option('--ssh-key <file>', 'an SSH deploy key for the clone URL')
    .option(
      '--ssh-known-hosts <file>',
      "the git server's host keys for --ssh-key, as ssh-keyscan prints them (default: trust the first seen)",
    )
    .option('--webhook-secret-stdin', 'read the webhook secret from standard input (default: generated)')
    .option('--rules <file>', 'build rules, a YAML or JSON list (default: the default branch builds latest)')
    .option('--concurrency <n>', 'builds of this project at once', '1')
    .option('--no-cancel-running', 'a newer push does not cancel a running build of the same rule and ref')
    .option('--cache-repository <name>', 'the repository the build cache is shared through');
}

async function projectBody(options: ProjectOptions): Promise<Record<string, unknown>> {
  if (options.tokenStdin && options.webhookSecretStdin)
    throw new CliError('--token-stdin and --webhook-secret-stdin both read standard input', 2);
  if (options.tokenStdin && options.sshKey) throw new CliError('give an HTTPS token or an SSH key, not both', 2);
  if (options.sshKnownHosts && !options.sshKey) throw new CliError('--ssh-known-hosts goes with --ssh-key', 2);
  const credentials = options.tokenStdin
    ? { type: 'token', username: options.tokenUser, token: await readStdin() }
    : options.sshKey
      ? {
          type: 'ssh',
          privateKey: await readText(options.sshKey),
          knownHosts: options.sshKnownHosts ? await readText(options.sshKnownHosts) : null,
        }
      : { type: 'none' };
  return {
    repository: options.repository,
    git: { url: options.gitUrl, defaultBranch: options.defaultBranch, credentials },
    ...(options.webhookSecretStdin ? { webhookSecret: await readStdin() } : {}),
    ...(options.rules ? { rules: await readRules(options.rules) } : {}),
    concurrency: count(options.concurrency ?? '1'),
    cancelRunning: options.cancelRunning,
    cacheRepository: options.cacheRepository ?? null,
  };
}

function readText(file: string): Promise<string> {
  return readFile(file, 'utf8').catch(() => fail(`cannot read ${file}`));
}

async function readRules(file: string): Promise<unknown> {
  const text = await readText(file);
  try {
    return parseYaml(text) as unknown;
  } catch (error) {
    return fail(`${file}: ${(error as Error).message}`);
  }
}

async function followLogs(api: AdminClient, id: string, follow: boolean): Promise<void> {
  let from = 0;
  for (;;) {
    const page = (await api.call('GET', `builds/${enc(id)}/logs?from=${from}`)) as { lines: string[]; next: number; finished: boolean };
    for (const line of page.lines) process.stdout.write(`${line}\n`);
    from = page.next;
    if (!follow || (page.finished && page.lines.length === 0)) break;
    if (page.lines.length === 0) await sleep(FOLLOW_POLL_MS);
  }
  const record = (await api.call('GET', `builds/${enc(id)}`)) as { state: string; error: string };
  if (follow && record.state !== 'succeeded') throw new CliError(`build ${id} ${record.state}${record.error ? `: ${record.error}` : ''}`);
}

async function readStdin(): Promise<string> {
  let text = '';
  for await (const chunk of process.stdin) text += String(chunk);
  return text.replace(/\r?\n$/, '');
}

function fail(message: string): never {
  throw new CliError(message, 2);
}
