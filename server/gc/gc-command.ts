import type { Command } from 'commander';
import { createLogger } from '../../platform/logger.js';
import { loadConfig, locationFlags } from '../config.js';
import { RedisMetadataStore } from '../metadata/redis-metadata-store.js';
import { openRegistryRedis } from '../redis/registry-redis.js';
import { createBlobStore } from '../registry.js';
import { GarbageCollector } from './collector.js';
import { gcOptionsFromConfig } from './gc-run.js';
import { RedisGcStore } from '../metadata/redis-gc-store.js';

interface GcCommandOptions {
  config?: string;
  dataDir?: string;
  redisUrl?: string;
  dryRun?: boolean;
  deleteUntagged?: boolean;
}

/** Exit code when another collector holds the lease, so a cron job can tell "skipped" from "failed". */
const EXIT_LEASE_HELD = 3;

/**
 * `berth gc`: one collection run in this process, straight on the registry's Redis and blob store. It
 * needs no admin API (which may be off) and can be run, limited and killed apart from the servers (cron, a
 * Kubernetes CronJob); the collector lease keeps it from overlapping a scheduled run in a replica.
 * Prints the report as JSON on stdout, logs on stderr.
 */
export function registerGcCommand(program: Command): void {
  program
    .command('gc')
    .description('collect garbage now: unreferenced blobs, dangling links, expired uploads (and untagged manifests if asked)')
    .option('-c, --config <file>', 'the registry configuration file (also BERTH_CONFIG)')
    .option('-d, --data-dir <dir>', 'the data directory of the running registry (its embedded Redis and blobs)')
    .option('--redis-url <url>', 'the registry Redis, when it is not embedded')
    .option('--dry-run', 'report what would be deleted and change nothing')
    .option('--delete-untagged', 'also delete manifests no tag reaches (config gc.deleteUntagged)')
    .action(async (options: GcCommandOptions) => {
      try {
        process.exitCode = await collectOnce(options);
      } catch (error) {
        process.stderr.write(`berth: ${(error as Error).message}\n`);
        process.exitCode = 1;
      }
    });
}

async function collectOnce(options: GcCommandOptions): Promise<number> {
  const config = loadConfig({
    file: options.config,
    flags: { ...locationFlags(options), 'gc.deleteUntagged': { flag: '--delete-untagged', value: options.deleteUntagged } },
  });
  const logger = createLogger({ ...config.log, service: 'berth-gc', destination: 'stderr' });
  const redis = openRegistryRedis(config, logger);
  try {
    const metadata = new RedisMetadataStore(redis, config.redis.keyPrefix);
    const store = await createBlobStore(config, logger);
    const collector = new GarbageCollector(metadata, new RedisGcStore(redis, config.redis.keyPrefix), store, logger);
    const report = await collector.run(gcOptionsFromConfig(config.gc, options.dryRun ?? false));
    if (!report) {
      process.stderr.write('berth: another garbage collection is running\n');
      return EXIT_LEASE_HELD;
    }
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    return 0;
  } finally {
    redis.disconnect();
  }
}
