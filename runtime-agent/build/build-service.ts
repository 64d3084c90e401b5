import path from 'node:path';
import { mkdir } from 'node:fs/promises';
import type { AgentConfig } from '../config/agent-config.js';
import type { ContentStore } from '../content/content-store.js';
import { findImage } from '../image/image-lookup.js';
import type { ImagePuller } from '../image/image-puller.js';
import type { ImageRecord, ImageStore } from '../image/image-store.js';
import type { Leases } from '../image/leases.js';
import type { ContainerNetwork } from '../network/container-network.js';
import type { CredentialStore } from '../registry/credential-store.js';
import type { Credentials } from '../registry/registry-auth.js';
import type { RegistryClient } from '../registry/registry-client.js';
import type { RegistryConnector } from '../registry/registry-access.js';
import type { Snapshotter } from '../snapshot/snapshotter.js';
import { hostNofileLimit } from '../spec/oci-spec.js';
import { parseReference } from '../../oci/reference.js';
import { CodedError } from '../../platform/errors.js';
import { AgentErrors } from '../errors.js';
import { BuildCache } from './build-cache.js';
import { ImageBuilder } from './builder.js';
import { registryPublisher } from './image-publisher.js';
import { RegistryCacheStore } from './registry-cache.js';
import { RunSandbox } from './run-sandbox.js';
import { OpaqueMarks } from '../snapshot/layered-root.js';

/** The daemon's builder on its stores: scratch space, cache index and cache mounts under `<data-dir>/build*`. */

export interface BuilderStores {
  content: ContentStore;
  snapshots: Snapshotter;
  images: ImageStore;
  leases: Leases;
  puller: ImagePuller;
  credentials: CredentialStore;
  registryClient: (registry: string, credentials: Credentials | undefined) => RegistryClient;
  /** The cache's and the pushes' registry clients, with each build's access. */
  connector: RegistryConnector;
  /** The containers' bridge, which RUN joins on the default network. */
  network: ContainerNetwork;
}

export async function createImageBuilder(
  config: AgentConfig,
  stores: BuilderStores,
): Promise<{ builder: ImageBuilder; contextRoot: string }> {
  const root = path.join(config.dataDir, 'build');
  const cache = new BuildCache(path.join(config.dataDir, 'build-cache'), stores.content);
  await cache.init();
  for (const directory of ['work', 'contexts', 'cache-mounts', 'runc'])
    await mkdir(path.join(root, directory), { recursive: true, mode: 0o700 });
  const publisher = registryPublisher(stores.content, stores.connector);
  const opaqueMarks = new OpaqueMarks();
  const builder = new ImageBuilder({
    content: stores.content,
    snapshots: stores.snapshots,
    images: stores.images,
    leases: stores.leases,
    sandbox: new RunSandbox({
      runtime: config.runtime,
      runcRoot: path.join(root, 'runc'),
      nofileLimit: await hostNofileLimit(),
      network: stores.network,
      opaqueMarks,
    }),
    opaqueMarks,
    cache,
    cacheRegistry: new RegistryCacheStore({ content: stores.content, connector: stores.connector, publisher }),
    publisher,
    workRoot: path.join(root, 'work'),
    cacheMountsRoot: path.join(root, 'cache-mounts'),
    platform: config.platform,
    resolveImage: (reference, pull, report) => resolveImage(stores, reference, pull, report),
  });
  return { builder, contextRoot: path.join(root, 'contexts') };
}

/** A base image from the store, else (or with --pull, always) pulled with the saved credentials, as docker build does. */
async function resolveImage(stores: BuilderStores, text: string, pull: boolean, report: (message: string) => void): Promise<ImageRecord> {
  if (!pull) {
    try {
      return await findImage(text, stores.images);
    } catch (error) {
      if (!(error instanceof CodedError) || error.code !== AgentErrors.IMAGE_UNKNOWN.code) throw error;
    }
  }
  const reference = parseReference(text);
  const client = stores.registryClient(reference.registry, await stores.credentials.get(reference.registry));
  return stores.puller.pull(reference, client, (event) => {
    if (event.type === 'status' || event.type === 'warning') report(event.message);
  });
}
