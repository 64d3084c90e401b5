import { Option, type Command } from 'commander';
import type { ConfigFlags } from '../config/agent-config.js';

/** `berth-agent daemon`: its flags here; the daemon, its configuration and the logger are imported when it starts. */
export function addDaemonCommand(program: Command): void {
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
        import('../../platform/logger.js'),
        import('../config/agent-config.js'),
        import('./daemon.js'),
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
}

function collectValues(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}
