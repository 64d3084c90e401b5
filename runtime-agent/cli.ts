#!/usr/bin/env node
import { Command, Option } from 'commander';
import { AgentClient, AgentRequestError } from './client/agent-client.js';
import { addAttachCommand } from './client/attach-commands.js';
import { addBuildCommand } from './client/build-command.js';
import { addContainerCommands } from './client/container-commands.js';
import { addEventCommands } from './client/event-commands.js';
import { humanSize } from './client/human-format.js';
import { imagesTable } from './client/images-table.js';
import { IMAGE_HEADERS, imageRow, listFormat } from './client/format-rows.js';
import { addVerbCommands } from './client/verb-commands.js';
import type { ConfigFlags } from './config/agent-config.js';
import { shortDigest } from '../oci/digest.js';
import { DEFAULT_REGISTRY } from '../oci/reference.js';
import { agentSocketPath, DEFAULT_DATA_DIR } from './config/socket-path.js';

/**
 * `berth-agent`: the daemon, and docker-like commands that talk to it over its socket. The daemon, its
 * configuration and the pull display are imported when used: a client command's start-up (a container run's
 * latency) pays only for the client.
 */

const program = new Command('berth-agent')
  .description('Berth runtime agent: pulls images and runs them as containers')
  .enablePositionalOptions()
  .option('--data-dir <dir>', `state directory (env BERTH_AGENT_DATA_DIR, default ${DEFAULT_DATA_DIR})`)
  .option('--socket <path>', 'API socket (env BERTH_AGENT_SOCKET, default <data-dir>/agent.sock)')
  .showHelpAfterError();

function client(command: Command): AgentClient {
  return new AgentClient(agentSocketPath(command.optsWithGlobals<ConfigFlags>()));
}

program
  .command('daemon')
  .description('run the agent daemon (as root)')
  .addOption(
    new Option(
      '--insecure-registry <host...>',
      'reach these registries over plain http (env BERTH_AGENT_INSECURE_REGISTRIES, comma-separated)',
    ),
  )
  .option('--max-concurrent-downloads <n>', 'layer downloads at once (env BERTH_AGENT_MAX_CONCURRENT_DOWNLOADS, default 3)')
  .option(
    '--stall-timeout <seconds>',
    'abort (and later resume) a layer download idle this long (env BERTH_AGENT_STALL_TIMEOUT, default 30)',
  )
  .option('--keep-setid', 'keep setuid/setgid bits of unpacked files (env BERTH_AGENT_KEEP_SETID=true)')
  .option('--platform <os/arch[/variant]>', 'platform to pick from image indexes (env BERTH_AGENT_PLATFORM, default this host)')
  .option('--runtime <binary>', 'OCI runtime (env BERTH_AGENT_RUNTIME, default runc)')
  .option('--bridge-name <name>', 'bridge for --network bridge (env BERTH_AGENT_BRIDGE_NAME, default berth0)')
  .option('--bridge-subnet <cidr>', 'container addresses (env BERTH_AGENT_BRIDGE_SUBNET, default 10.87.0.0/16)')
  .option('--log-max-size <size>', 'rotate a container log at this size (env BERTH_AGENT_LOG_MAX_SIZE, default 10m)')
  .option('--log-max-files <n>', 'log files kept per container (env BERTH_AGENT_LOG_MAX_FILES, default 3)')
  .option('--join <url>', 'join this Berth registry as a deployment node and run what it assigns (env BERTH_AGENT_JOIN)')
  .option('--token <token>', 'the join token (berth node token) for --join (env BERTH_AGENT_TOKEN)')
  .option(
    '--label <key=value>',
    'a label of this node, for placement constraints (repeatable; env BERTH_AGENT_LABEL, comma-separated)',
    collectValues,
  )
  .option('--node-name <name>', "this node's name in the registry (env BERTH_AGENT_NODE_NAME, default the host name)")
  .option(
    '--advertise-address <ip>',
    "where this node's published ports answer (env BERTH_AGENT_ADVERTISE_ADDRESS, default the address that reaches the registry)",
  )
  .option('--build-worker', "also build images for a registry's automated builds (env BERTH_AGENT_BUILD_WORKER=true)")
  .option('--registry <url>', 'the registry whose build jobs to take (env BERTH_AGENT_REGISTRY)')
  .option('--worker-token <token>', 'its `berth build worker-token` for --build-worker (env BERTH_AGENT_WORKER_TOKEN)')
  .option('--worker-name <name>', 'this agent in build records (env BERTH_AGENT_WORKER_NAME, default the host name)')
  .option(
    '--git-mirror-max-age <duration>',
    "remove a build worker's git mirror of a project unused this long (env BERTH_AGENT_GIT_MIRROR_MAX_AGE, default 48h)",
  )
  .option(
    '--git-mirror-max-size <size>',
    'remove the least recently used git mirrors beyond this size (env BERTH_AGENT_GIT_MIRROR_MAX_SIZE, default 2g)',
  )
  .action(async (_options, command: Command) => {
    const [{ createLogger }, { resolveConfig }, { startDaemon }] = await Promise.all([
      import('../platform/logger.js'),
      import('./config/agent-config.js'),
      import('./daemon/daemon.js'),
    ]);
    const logger = createLogger({ service: 'berth-agent', level: 'info', format: 'json' });
    const { server, node } = await startDaemon(resolveConfig(command.optsWithGlobals<ConfigFlags>()), logger);
    const shutdown = async (signal: string) => {
      logger.info({ signal }, 'shutting down');
      await node?.stop();
      server.close(() => process.exit(0));
      server.closeAllConnections();
    };
    process.once('SIGTERM', () => void shutdown('SIGTERM'));
    process.once('SIGINT', () => void shutdown('SIGINT'));
  });

program
  .command('pull')
  .description('pull an image from a registry')
  .argument('<reference>', 'e.g. 127.0.0.1:5000/team/app:1.0 or name@sha256:...')
  .option('--creds <user:password>', 'credentials for the registry')
  .action(async (reference: string, options: { creds?: string }, command: Command) => {
    const { pullImage } = await import('./client/pull-image.js');
    await pullImage(client(command), reference, options.creds, process.stdout);
  });

program
  .command('login')
  .description('log in to a registry: the daemon checks the credentials and uses them for its pulls')
  .argument('[server]', 'registry host[:port]', DEFAULT_REGISTRY)
  .requiredOption('-u, --username <name>', 'user name')
  .option('-p, --password <password>', 'password (prefer --password-stdin)')
  .option('--password-stdin', 'read the password from standard input')
  .action(async (server: string, options: { username: string; password?: string; passwordStdin?: boolean }, command: Command) => {
    if (options.password !== undefined) console.error('WARNING! Using --password via the CLI is insecure. Use --password-stdin.');
    const password = options.passwordStdin ? await readStdin() : options.password;
    if (password === undefined || password === '') throw new Error('a password is required: --password-stdin or -p');
    console.log((await client(command).login({ registry: server, username: options.username, password })).status);
  });

program
  .command('logout')
  .description('forget the credentials saved for a registry')
  .argument('[server]', 'registry host[:port]', DEFAULT_REGISTRY)
  .action(async (server: string, _options, command: Command) => {
    const { removed } = await client(command).logout(server);
    console.log(removed ? `Removing login credentials for ${server}` : `Not logged in to ${server}`);
  });

program
  .command('images')
  .description('list pulled images')
  .option('-q, --quiet', 'only show image ids')
  .option('--no-trunc', 'do not truncate image ids')
  .option('--format <template>', 'Go-template-like format, e.g. "{{.Repository}}:{{.Tag}}" or "table {{.ID}}\\t{{.Size}}"')
  .action(async (options: { quiet?: boolean; trunc: boolean; format?: string }, command: Command) => {
    const format = listFormat(options.format, IMAGE_HEADERS);
    const images = await client(command).images();
    if (format) console.log(format.render(images.map((image) => imageRow(image, !options.trunc))));
    else if (options.quiet) console.log([...new Set(images.map((image) => shortDigest(image.id)))].join('\n'));
    else console.log(imagesTable(images));
  });

program
  .command('rmi')
  .description('remove images (by reference or id) and the content only they used')
  .argument('<image...>')
  .action(async (references: string[], _options, command: Command) => {
    for (const reference of references) {
      const result = await client(command).remove(reference);
      for (const untagged of result.untagged) console.log(`Untagged: ${untagged}`);
      for (const deleted of result.deleted) console.log(`Deleted: ${deleted}`);
    }
  });

program
  .command('prune')
  .description('remove content and snapshots no image references, and leftovers of interrupted pulls')
  .action(async (_options, command: Command) => {
    const result = await client(command).prune();
    for (const deleted of [...result.deletedBlobs, ...result.deletedSnapshots]) console.log(`Deleted: ${deleted}`);
    console.log(`Total reclaimed space: ${humanSize(result.reclaimedBytes)}`);
  });

addContainerCommands(program, client);
addEventCommands(program, client);
addAttachCommand(program, client);
addBuildCommand(program, client);
addVerbCommands(program, client);

function collectValues(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** The whole of standard input without its trailing newline, as docker's --password-stdin reads it. */
async function readStdin(): Promise<string> {
  let text = '';
  for await (const chunk of process.stdin) text += String(chunk);
  return text.replace(/\r?\n$/, '');
}

program.parseAsync().catch((error: Error) => {
  console.error(`Error: ${error.message}`);
  process.exitCode = error instanceof AgentRequestError && error.exitCode !== undefined ? error.exitCode : 1;
});
