import { chmod, mkdir, unlink } from 'node:fs/promises';
import { connect } from 'node:net';
import path from 'node:path';
import type { Server } from 'node:http';
import type { Logger } from '../../platform/logger.js';
import type { AgentConfig } from '../config/agent-config.js';
import { FileContentStore } from '../content/content-store.js';
import { GarbageCollector } from '../image/garbage-collector.js';
import { ImagePuller } from '../image/image-puller.js';
import { JsonFileImageStore } from '../image/image-store.js';
import { Leases } from '../image/leases.js';
import { CredentialStore } from '../registry/credential-store.js';
import type { Credentials } from '../registry/registry-auth.js';
import { HttpRegistryClient } from '../registry/registry-client.js';
import { DirectorySnapshotter } from '../snapshot/snapshotter.js';
import { ContainerLauncher } from '../container/container-launcher.js';
import { ContainerManager } from '../container/container-manager.js';
import { ContainerStore } from '../container/container-store.js';
import { VolumeStore } from '../volumes/volume-store.js';
import { hostNofileLimit } from '../spec/oci-spec.js';
import { DEFAULT_RESTART_BACKOFF } from '../container/restart-backoff.js';
import { ContainerNetwork } from '../network/container-network.js';
import { RuncRuntime } from '../runtime/runc-runtime.js';
import { createImageBuilder } from '../build/build-service.js';
import { createApiServer } from './api-server.js';
import { observeAll } from '../container/container-observer.js';
import { HealthMonitor } from '../container/health/health-monitor.js';
import { ContainerEvents } from '../events/container-events.js';
import { EventBus } from '../events/event-bus.js';
import { EventHistory } from '../events/event-history.js';
import { ImageEvents } from '../events/image-events.js';

import { Converger } from '../node/converger.js';
import { daemonReplicas } from '../node/daemon-replicas.js';
import { NodeCredentialFile } from '../node/node-credential-file.js';
import { NodeAgent } from '../node/node-agent.js';
import { stagingDirectory } from './image-verb-routes.js';
import { HttpUploadClient } from '../registry/upload-client.js';
import type { ImageBuilder } from '../build/builder.js';
import { GitMirrors } from '../worker/git-mirrors.js';
import { BuildWorker } from '../worker/build-worker.js';
import { WorkerClient } from '../worker/worker-client.js';
import { registryConnector, type RegistryConnector } from '../registry/registry-access.js';

/** Events kept for `events --since` (docker keeps 256, in memory only). */
const EVENT_HISTORY_CAPACITY = 1024;

/** A started daemon: its API server, and the deployment node loop when it joined a registry. */
export interface RunningDaemon {
  server: Server;
  node: NodeAgent | undefined;
}

/**
 * Starts the agent daemon: state under the data directory (0700), the API on a unix socket (0600), so only
 * root talks to it; with `--join`, the deployment node loop too.
 */
export async function startDaemon(config: AgentConfig, logger: Logger): Promise<RunningDaemon> {
  const isRoot = process.getuid?.() === 0;
  if (!isRoot) logger.warn('not running as root: file ownership from images is not applied');
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  await chmod(config.dataDir, 0o700);
  const content = new FileContentStore(path.join(config.dataDir, 'content'));
  const snapshots = new DirectorySnapshotter(path.join(config.dataDir, 'snapshots'));
  const images = new JsonFileImageStore(config.dataDir);
  await content.init();
  await snapshots.init();
  const leftovers = await snapshots.removeIncomplete();
  if (leftovers > 0) logger.info({ leftovers }, 'removed half-written snapshots of an earlier run');

  const events = await startEvents(config, logger);
  const network = new ContainerNetwork(
    { bridgeName: config.bridgeName, subnet: config.bridgeSubnet, stateDir: path.join(config.dataDir, 'network') },
    logger,
  );
  const containers = await startContainers(config, { content, snapshots, images, network }, events, logger);
  const leases = new Leases();
  const credentials = new CredentialStore(config.dataDir);
  const puller = new ImagePuller({ content, snapshots, images }, leases, {
    platform: config.platform,
    maxConcurrentDownloads: config.maxConcurrentDownloads,
    keepSetid: config.keepSetid,
    preserveOwnership: isRoot,
  });
  const registryClient = (registry: string, registryCredentials: Credentials | undefined) =>
    new HttpRegistryClient(registry, {
      insecureRegistries: config.insecureRegistries,
      stallTimeoutMs: config.stallTimeoutSeconds * 1000,
      credentials: registryCredentials,
      bearerToken: undefined,
    });
  const connector = registryConnector({
    insecureRegistries: buildInsecureRegistries(config),
    stallTimeoutMs: config.stallTimeoutSeconds * 1000,
    credentials,
  });
  const uploadClient = async (registry: string, repository: string, mountSource: string | undefined) =>
    new HttpUploadClient(registry, repository, {
      insecureRegistries: config.insecureRegistries,
      credentials: await credentials.get(registry),
      mountSource,
      bearerToken: undefined,
    });
  const build = await createImageBuilder(config, {
    content,
    snapshots,
    images,
    leases,
    puller,
    credentials,
    registryClient,
    connector,
    network,
  });
  const collector = new GarbageCollector(images, content, snapshots, leases, () => containers.usedLayers());
  const server = createApiServer({
    containers,
    events,
    imageEvents: new ImageEvents(events),
    credentials,
    containerUsing: (imageId) => containers.list(true).find((container) => container.imageId === imageId)?.id,
    puller,
    images,
    collector,
    registryClient,
    builder: build.builder,
    buildContextRoot: build.contextRoot,
    logger,
    verbs: {
      images,
      content,
      snapshots,
      containers,
      collector,
      credentials,
      uploadClient,
      stagingDir: stagingDirectory(config.dataDir),
      unpack: { keepSetid: config.keepSetid, preserveOwnership: isRoot, platform: config.platform },
      logger,
    },
  });
  if (config.buildWorker) startBuildWorker(config, config.buildWorker, { builder: build.builder, content, connector }, server, logger);
  const nodeConfig = config.node;
  const node =
    nodeConfig &&
    (await NodeAgent.start(
      nodeConfig,
      new NodeCredentialFile(config.dataDir),
      (pullAccess) =>
        new Converger(daemonReplicas({ containers, puller, connector, pullAccess }), new URL(nodeConfig.joinUrl).host, logger),
      logger,
    ));
  await listenOnSocket(server, config.socketPath);
  logger.info({ socket: config.socketPath, dataDir: config.dataDir }, 'berth-agent listening');
  return { server, node: node ?? undefined };
}

/** The builder role: build jobs from the registry, pushed back to it; stopped with the API server. */
function startBuildWorker(
  config: AgentConfig,
  settings: NonNullable<AgentConfig['buildWorker']>,
  parts: { builder: ImageBuilder; content: FileContentStore; connector: RegistryConnector },
  server: Server,
  logger: Logger,
): void {
  const worker = new BuildWorker({
    client: new WorkerClient(settings.registry, settings.token, settings.name),
    builder: parts.builder,
    content: parts.content,
    connector: parts.connector,
    workRoot: path.join(config.dataDir, 'build', 'jobs'),
    mirrors: new GitMirrors(path.join(config.dataDir, 'build', 'git'), settings.gitMirrors),
    logger: logger.child({ component: 'build-worker' }),
  });
  worker.start();
  server.once('close', () => void worker.stop());
  logger.info({ registry: settings.registry, name: settings.name }, 'build worker started');
}

/** The registries builds reach over http: the configured ones, and the build worker's registry when it was given as http://. */
function buildInsecureRegistries(config: AgentConfig): readonly string[] {
  const worker = config.buildWorker?.registry;
  return worker?.startsWith('http://') ? [...config.insecureRegistries, new URL(worker).host] : config.insecureRegistries;
}

/** The container side: records, runc behind its shims, the network; re-attaches to what survived the last daemon. */
async function startContainers(
  config: AgentConfig,
  stores: { content: FileContentStore; snapshots: DirectorySnapshotter; images: JsonFileImageStore; network: ContainerNetwork },
  events: EventBus,
  logger: Logger,
): Promise<ContainerManager> {
  const store = new ContainerStore(path.join(config.dataDir, 'containers'));
  const volumes = new VolumeStore(path.join(config.dataDir, 'volumes'));
  await store.init();
  const { network } = stores;
  const runtime = new RuncRuntime({
    binary: config.runtime,
    root: path.join(config.dataDir, 'runc'),
    logMaxSizeBytes: config.logMaxSizeBytes,
    logMaxFiles: config.logMaxFiles,
  });
  const containerEvents = new ContainerEvents(events);
  const health = new HealthMonitor({
    exec: (id, args) => runtime.exec(id, { args, env: [], cwd: undefined, user: undefined }),
    save: (record) => store.save(record),
    statusChanged: (record, status) => containerEvents.healthChanged(record, status),
    logger,
  });
  const manager = new ContainerManager({
    store,
    launcher: new ContainerLauncher(stores.snapshots, network, volumes, await hostNofileLimit()),
    runtime,
    network,
    volumes,
    images: stores.images,
    content: stores.content,
    backoff: { ...DEFAULT_RESTART_BACKOFF, initialDelayMs: config.restartDelayMs },
    observer: observeAll([containerEvents, health]),
    logger,
  });
  await manager.recover();
  return manager;
}

/** The event stream, its history reloaded from `<data-dir>/events/events.jsonl`. */
async function startEvents(config: AgentConfig, logger: Logger): Promise<EventBus> {
  const history = await EventHistory.open(path.join(config.dataDir, 'events', 'events.jsonl'), EVENT_HISTORY_CAPACITY, (error) =>
    logger.warn({ err: error }, 'writing the event history failed'),
  );
  return new EventBus(history);
}

async function listenOnSocket(server: Server, socketPath: string): Promise<void> {
  await mkdir(path.dirname(socketPath), { recursive: true, mode: 0o700 });
  if (await socketAnswers(socketPath)) throw new Error(`another berth-agent is listening on ${socketPath}`);
  await unlink(socketPath).catch(() => undefined); // left by a daemon that died
  // The umask makes the socket 0600 from its creation on, not only after the chmod below.
  const umask = process.umask(0o177);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socketPath, () => resolve());
    });
  } finally {
    process.umask(umask);
  }
  await chmod(socketPath, 0o600);
}

function socketAnswers(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(socketPath);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
