import type { Command } from 'commander';
import type { AgentClient } from './agent-client.js';

/**
 * The CLI's commands in groups, each group a module imported only when one of its verbs is invoked: a
 * `run` loads the container commands and nothing of build, push or the daemon. A command line whose verb
 * no group names (help, no verb, a typo) loads them all, so help lists every command and a typo gets
 * commander's suggestion; a verb missing from `verbs` still works, only slower.
 */

export type ClientOf = (command: Command) => AgentClient;
type Register = (program: Command, client: ClientOf) => void;

export interface CommandGroup {
  /** The top-level commands the group's module adds. */
  verbs: readonly string[];
  load(): Promise<Register>;
}

export const COMMAND_GROUPS: readonly CommandGroup[] = [
  { verbs: ['daemon'], load: async () => (await import('../daemon/daemon-command.js')).addDaemonCommand },
  { verbs: ['pull'], load: async () => (await import('./pull-command.js')).addPullCommand },
  {
    verbs: ['login', 'logout', 'images', 'rmi', 'prune'],
    load: async () => (await import('./image-store-commands.js')).addImageStoreCommands,
  },
  {
    verbs: ['run', 'start', 'ps', 'logs', 'restart', 'wait', 'stop', 'kill', 'rm', 'exec', 'volume', 'inspect'],
    load: async () => (await import('./container-commands.js')).addContainerCommands,
  },
  { verbs: ['events'], load: async () => (await import('./event-commands.js')).addEventCommands },
  { verbs: ['attach'], load: async () => (await import('./attach-commands.js')).addAttachCommand },
  { verbs: ['build'], load: async () => (await import('./build-command.js')).addBuildCommand },
  {
    verbs: ['tag', 'push', 'save', 'load', 'image', 'history', 'system'],
    load: async () => (await import('./image-commands.js')).addImageCommands,
  },
  {
    verbs: ['cp', 'stats', 'top', 'port', 'rename', 'pause', 'unpause'],
    load: async () => (await import('./container-verbs.js')).addContainerVerbs,
  },
];

/** Global options that take a value: the word after them is not the verb. */
const GLOBAL_OPTIONS_WITH_VALUE = new Set(['--data-dir', '--socket']);

/** The verb of a command line (the arguments after the program's name): its first word that is not an option or an option's value. */
export function invokedVerb(args: readonly string[]): string | undefined {
  for (let index = 0; index < args.length; index++) {
    const arg = args[index]!;
    if (GLOBAL_OPTIONS_WITH_VALUE.has(arg)) index++;
    else if (!arg.startsWith('-')) return arg;
  }
  return undefined;
}

const VERSION_FLAGS = new Set(['-v', '--version']);

/** The groups a command line needs: none to print the version, the one of its verb, or all of them. */
export function groupsFor(args: readonly string[], groups: readonly CommandGroup[] = COMMAND_GROUPS): readonly CommandGroup[] {
  const verb = invokedVerb(args);
  if (verb === undefined && args.some((arg) => VERSION_FLAGS.has(arg))) return [];
  const group = verb === undefined ? undefined : groups.find((candidate) => candidate.verbs.includes(verb));
  return group ? [group] : groups;
}

/** Adds the commands `args` needs to `program`. */
export async function addCommandsFor(program: Command, client: ClientOf, args: readonly string[]): Promise<void> {
  const registers = await Promise.all(groupsFor(args).map((group) => group.load()));
  for (const register of registers) register(program, client);
}
