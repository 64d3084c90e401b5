#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { AgentClient, AgentRequestError } from './client/agent-client.js';
import { addCommandsFor } from './client/command-groups.js';
import type { ConfigFlags } from './config/agent-config.js';
import { agentSocketPath, DEFAULT_DATA_DIR } from './config/socket-path.js';

/**
 * `berth-agent`: the daemon, and docker-like commands that talk to it over its socket. Only the module of
 * the invoked command is imported (client/command-groups.ts): a client command's start-up (a container
 * run's latency) pays for that command alone.
 */

const args = process.argv.slice(2);
const program = new Command('berth-agent')
  .description('Berth runtime agent: pulls images and runs them as containers')
  .option('-v, --version', 'print the version')
  .enablePositionalOptions()
  .option('--data-dir <dir>', `state directory (env BERTH_AGENT_DATA_DIR, default ${DEFAULT_DATA_DIR})`)
  .option('--socket <path>', 'API socket (env BERTH_AGENT_SOCKET, default <data-dir>/agent.sock)')
  .showHelpAfterError()
  .on('option:version', () => {
    console.log(`berth-agent version ${packageVersion()}`);
    process.exit(0);
  });

function client(command: Command): AgentClient {
  return new AgentClient(agentSocketPath(command.optsWithGlobals<ConfigFlags>()));
}

/** From the package.json beside dist/, read only when asked for: a copy of dist/ alone runs every other command. */
function packageVersion(): string {
  return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}

try {
  await addCommandsFor(program, client, args);
  await program.parseAsync();
} catch (error) {
  console.error(`Error: ${(error as Error).message}`);
  process.exitCode = error instanceof AgentRequestError && error.exitCode !== undefined ? error.exitCode : 1;
}
