import type { Command } from 'commander';
import type { AgentClient } from './agent-client.js';
import { addContainerVerbs } from './container-verbs.js';
import { addImageCommands } from './image-commands.js';

/** The everyday verbs beyond run and pull: images (tag, push, save, load, ...), containers (cp, stats, ...), system. */
export function addVerbCommands(program: Command, client: (command: Command) => AgentClient): void {
  addImageCommands(program, client);
  addContainerVerbs(program, client);
}
