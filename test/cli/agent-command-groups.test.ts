import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { Command } from 'commander';
import { COMMAND_GROUPS, groupsFor, invokedVerb } from '../../runtime-agent/client/command-groups.js';
import { run } from '../helpers/exec.js';

/** The agent CLI imports the module of the invoked command only; help, typos and --version still work as before. */

const AGENT_CLI = fileURLToPath(new URL('../../runtime-agent/cli.js', import.meta.url));
const PACKAGE_JSON = fileURLToPath(new URL('../../../package.json', import.meta.url));

function agentCli(args: string[]) {
  return run(process.execPath, [AGENT_CLI, '--socket', '/nonexistent/agent.sock', ...args], { allowFailure: true, timeoutMs: 30_000 });
}

test('the verb is the first word that is neither an option nor a global option’s value', (t) => {
  t.is(invokedVerb(['run', '--rm', 'busybox', 'echo', 'hi']), 'run');
  t.is(invokedVerb(['--data-dir', '/var/lib/x', '--socket', '/run/x.sock', 'ps', '-a']), 'ps');
  t.is(invokedVerb(['--data-dir=/var/lib/x', 'rm', 'c1']), 'rm');
  t.is(invokedVerb(['--help']), undefined);
  t.is(invokedVerb([]), undefined);
});

test('each group adds exactly the verbs it lists, and the groups together add every command once', async (t) => {
  const all: string[] = [];
  for (const group of COMMAND_GROUPS) {
    const program = new Command().enablePositionalOptions();
    (await group.load())(program, () => {
      throw new Error('no client while only defining commands');
    });
    const added = program.commands.map((command) => command.name());
    t.deepEqual(added, [...group.verbs], `the group of ${group.verbs[0]}`);
    all.push(...added);
  }
  t.is(new Set(all).size, all.length);
  t.true(all.includes('run') && all.includes('daemon') && all.includes('build'));
});

test('a verb loads its group only; no verb, help and an unknown verb load every group; --version none', (t) => {
  t.deepEqual(
    groupsFor(['--socket', 's', 'run', 'busybox']).map((group) => group.verbs[0]),
    ['run'],
  );
  for (const args of [[], ['--help'], ['help', 'run'], ['rnu']]) t.is(groupsFor(args).length, COMMAND_GROUPS.length, args.join(' '));
  t.deepEqual(groupsFor(['--version']), []);
});

test('berth-agent --version prints the package version; help lists every command; a typo gets a suggestion', async (t) => {
  const { version } = JSON.parse(await readFile(PACKAGE_JSON, 'utf8')) as { version: string };
  const printed = await agentCli(['--version']);
  t.is(printed.code, 0, printed.stderr);
  t.is(printed.stdout, `berth-agent version ${version}\n`);

  const help = await agentCli(['--help']);
  t.is(help.code, 0, help.stderr);
  for (const verb of COMMAND_GROUPS.flatMap((group) => group.verbs)) t.regex(help.stdout, new RegExp(`^  ${verb}\\b`, 'm'));

  const typo = await agentCli(['rnu']);
  t.is(typo.code, 1);
  t.regex(typo.stderr, /unknown command 'rnu'\n\(Did you mean run\?\)/);

  const runHelp = await agentCli(['run', '--help']);
  t.regex(runHelp.stdout, /--network <mode>/);
});
