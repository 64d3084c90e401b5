#!/usr/bin/env node
import { Command, InvalidArgumentError } from 'commander';
import { registerAuthCommands } from './auth/cli-commands.js';
import { ConfigError } from '../platform/config.js';
import { leaveRoomForRequestBuffers } from './node-flags.js';
import { registerBuildCommands } from './builds/cli-commands.js';
import { registerDeployCommands } from './deploy/cli-commands.js';
import { loadConfig, locationFlags } from './config.js';
import { registerGcCommand } from './gc/gc-command.js';
import { createLogger } from '../platform/logger.js';
import { RedisBinaryMissingError } from './redis/embedded-redis.js';
import { ListenError, startRegistry } from './registry.js';

interface ServeOptions {
  config?: string;
  port?: number;
  host?: string;
  dataDir?: string;
  redisUrl?: string;
}

function parsePort(value: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new InvalidArgumentError('must be a port number (0-65535)');
  return port;
}

async function serve(options: ServeOptions): Promise<void> {
  leaveRoomForRequestBuffers();
  const config = loadConfig({
    file: options.config,
    flags: {
      'http.port': { flag: '--port', value: options.port },
      'http.host': { flag: '--host', value: options.host },
      ...locationFlags(options),
    },
  });
  const logger = createLogger(config.log);
  // Every promise is meant to be awaited or handled; one that is not is a bug to log, not a reason to stop serving.
  process.on('unhandledRejection', (reason) => logger.error({ err: reason }, 'unhandled promise rejection'));
  const registry = await startRegistry(config, logger);
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    registry.close().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

const program = new Command()
  .name('berth')
  .description('Berth: a self-hosted OCI registry (and, in runtime-agent/, a container runtime agent)')
  .showHelpAfterError();

program
  .command('serve')
  .description('run the registry (default: port 5000, filesystem storage under ./data, embedded Redis)')
  .option('-c, --config <file>', 'YAML configuration file (also BERTH_CONFIG)')
  .option('-p, --port <port>', 'listen port (config http.port, BERTH_HTTP__PORT)', parsePort)
  .option('--host <address>', 'listen address (config http.host)')
  .option('-d, --data-dir <dir>', 'data directory for blobs and the embedded Redis (config dataDir)')
  .option('--redis-url <url>', 'use this Redis instead of an embedded one (config redis.url)')
  .action(async (options: ServeOptions) => {
    try {
      await serve(options);
    } catch (error) {
      // What the operator must fix (2) or what stands in the way right now (1): one line, no stack.
      if (error instanceof ConfigError || error instanceof RedisBinaryMissingError || error instanceof ListenError) {
        process.stderr.write(`berth: ${error.message}\n`);
        process.exit(error instanceof ListenError ? 1 : 2);
      }
      throw error;
    }
  });

registerAuthCommands(program);
registerGcCommand(program);
registerDeployCommands(program);
registerBuildCommands(program);

await program.parseAsync();
