import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Redis } from 'ioredis';
import type { Logger } from '../platform/logger.js';
import { createApp, type ServedRoute } from './app.js';
import { delegatedSubjects } from './auth/revocation.js';
import { createAuth } from './auth/setup.js';
import type { Config } from './config.js';
import { createGc } from './gc/setup.js';
import { JobTokens } from './builds/job-tokens.js';
import { createBuilds } from './builds/setup.js';
import { DeployStore } from './deploy/deploy-store.js';
import { NodePullTokens } from './deploy/node-pull-tokens.js';
import { createDeploy } from './deploy/setup.js';
import { DescriptorUrlPolicy } from './oci/descriptor-urls.js';
import { applyConnectionLimits } from './http/connection-limits.js';
import { drainServer } from './http/drain.js';
import type { UploadPolicy } from './metadata/metadata-store.js';
import { RedisMetadataStore } from './metadata/redis-metadata-store.js';
import { createOps } from './ops-setup.js';
import { connectRedis } from './redis/connect.js';
import { EmbeddedRedis } from './redis/embedded-redis.js';
import { BlobService } from './services/blob-service.js';
import { ListingService } from './services/listing-service.js';
import { ManifestService } from './services/manifest-service.js';
import { UploadService } from './services/upload-service.js';
import type { BlobStore } from './storage/blob-store.js';
import { FilesystemBlobStore } from './storage/filesystem/filesystem-store.js';
import { SmallBlobCache } from './storage/small-blob-cache.js';

export interface RunningRegistry {
  server: Server;
  port: number;
  /** Every route served and the guard in front of it. */
  routes: ServedRoute[];
  close(): Promise<void>;
}

// How often Node checks for requests over the header timeout (its default, 30 s, would let one run 30 s late).
const CONNECTIONS_CHECK_INTERVAL_MS = 1_000;

/** The listen address cannot be taken (in use, or not permitted): a one-line error naming it. */
export class ListenError extends Error {
  override name = 'ListenError';
}

/**
 * Wires the stores, services and HTTP server together and starts listening. Whatever was started before a
 * failure (the embedded Redis, connections, timers) is stopped again, last first, before the error is thrown.
 */
export async function startRegistry(config: Config, logger: Logger): Promise<RunningRegistry> {
  const started: Array<() => Promise<void>> = [];
  try {
    return await startComponents(config, logger, started);
  } catch (error) {
    await stopInReverse(started, logger);
    throw error;
  }
}

async function startComponents(config: Config, logger: Logger, started: Array<() => Promise<void>>): Promise<RunningRegistry> {
  const external = config.redis.url !== undefined || config.redis.sentinel !== undefined;
  const embedded = external ? undefined : new EmbeddedRedis(config.dataDir, config.redis.embedded.binary, logger);
  if (embedded) {
    started.push(() => embedded.stop());
    await embedded.start();
  }
  const redis: Redis = connectRedis(external ? { config: config.redis } : { socketPath: embedded!.socketPath }, logger);
  const metadata = new RedisMetadataStore(redis, config.redis.keyPrefix);
  started.push(() => metadata.close());
  await metadata.ping();

  const ops = createOps(config, redis, metadata, await createBlobStore(config, logger), logger, () => embedded?.writeProblem);
  started.push(() => ops.stop());
  const { store } = ops;
  const jobTokens = new JobTokens(redis, config.redis.keyPrefix);
  const pullTokens = new NodePullTokens(new DeployStore(redis, config.redis.keyPrefix));
  const auth = await createAuth(config, redis, delegatedSubjects(jobTokens, pullTokens), logger);
  const deploy = await createDeploy(config, redis, metadata, ops.events, { nodes: pullTokens, signer: auth.tokens }, logger, (seconds) =>
    ops.metrics.deployControllerPass.observe(seconds),
  );
  started.push(() => deploy.stop());
  const { events } = deploy;
  const gc = createGc(config, redis, metadata, store, logger, (report) => ops.metrics.recordGc(report));
  started.push(() => gc.stop());
  const builds = createBuilds(config, redis, ops, { jobs: jobTokens, signer: auth.tokens }, logger);
  started.push(() => builds.stop());

  const { app, routes } = createApp(
    {
      blobs: new BlobService(metadata, store, config.storage.delete.enabled, smallBlobCache(config), events),
      uploads: new UploadService(metadata, store, logger, gc.commitGuard, uploadPolicy(config.uploads), events),
      manifests: new ManifestService(metadata, new DescriptorUrlPolicy(config.validation.manifests.urls), events),
      listings: new ListingService(metadata),
      config,
      access: auth.guard,
    },
    logger,
    ops.app,
    {
      auth: auth.api,
      gc: gc.adminApi,
      deploy,
      builds,
    },
    auth.adminGuard,
  );

  const server = createServer({ connectionsCheckingInterval: CONNECTIONS_CHECK_INTERVAL_MS }, app.callback());
  const stopLimits = applyConnectionLimits(server, config.http);
  started.push(async () => stopLimits());
  await listen(server, config.http.host, config.http.port);
  const port = (server.address() as AddressInfo).port;
  logger.info(
    {
      host: config.http.host,
      port,
      storage: store.kind,
      redis: config.redis.sentinel ? 'sentinel' : external ? 'external' : 'embedded',
      auth: config.auth.enabled,
    },
    'berth registry listening',
  );

  return {
    server,
    port,
    routes,
    close: async () => {
      builds.workers.release();
      await drainServer(server, config.http.drainTimeoutSeconds * 1000, logger);
      await stopInReverse(started, logger);
    },
  };
}

function uploadPolicy(uploads: Config['uploads']): UploadPolicy {
  return {
    ttlMs: uploads.purge.enabled ? Math.ceil(uploads.purge.maxAgeSeconds * 1000) : 0,
    maxPerRepository: uploads.maxPerRepository,
    maxPerOwner: uploads.maxPerAccount,
  };
}

function listen(server: Server, host: string, port: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => {
      const reason = error.code === 'EADDRINUSE' ? 'address already in use' : error.code === 'EACCES' ? 'permission denied' : error.message;
      reject(new ListenError(`cannot listen on ${host}:${port}: ${reason}`, { cause: error }));
    });
    server.listen(port, host, () => resolve());
  });
}

// Each step is attempted even if one before it fails: a failed Redis close must not leave redis-server running.
async function stopInReverse(started: Array<() => Promise<void>>, logger: Logger): Promise<void> {
  for (const stop of started.splice(0).reverse()) {
    await stop().catch((error: unknown) => logger.error({ err: error }, 'stopping a registry component failed'));
  }
}

export async function createBlobStore(config: Config, logger: Logger): Promise<BlobStore> {
  if (config.storage.driver === 's3' && config.storage.s3) {
    // The AWS SDK costs ~20 MiB of memory; a filesystem registry never loads it.
    const { S3BlobStore } = await import('./storage/s3/s3-store.js');
    return new S3BlobStore(config.storage.s3, logger);
  }
  const store = new FilesystemBlobStore(config.storage.filesystem.root ?? config.dataDir);
  await store.init();
  return store;
}

function smallBlobCache({ cache: { smallBlobs } }: Config): SmallBlobCache | undefined {
  return smallBlobs.enabled ? new SmallBlobCache(smallBlobs.maxBlobBytes, smallBlobs.maxTotalBytes) : undefined;
}
