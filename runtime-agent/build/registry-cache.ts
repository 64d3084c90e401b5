import { z } from 'zod';
import { digestOf, shortDigest } from '../../oci/digest.js';
import { digestSchema } from '../../oci/manifest.js';
import { MediaType } from '../../oci/media-types.js';
import type { ContentStore } from '../content/content-store.js';
import type { Lease } from '../image/leases.js';
import { parseManifest } from '../image/manifest.js';
import type { PushTarget } from '../registry/image-pusher.js';
import type { RegistryAccess, RegistryConnector } from '../registry/registry-access.js';
import { RegistryError } from '../registry/registry-error.js';
import type { CacheEntry, CachedLayer } from './build-cache.js';
import type { ImagePublisher } from './image-publisher.js';

/**
 * The build cache in a registry repository (`--cache-to`/`--cache-from`), laid out as BuildKit's registry
 * cache with `image-manifest=true` is: one OCI image manifest whose layers are every layer the build made or
 * reused (intermediate ones included, as `mode=max`), and whose config blob maps each step's cache key to its
 * layer (or to none, for a step that changed nothing) and its creation time. An image manifest rather than an
 * index: every registry accepts one whose blobs are all in the repository. Importing reads only the manifest
 * and the config; a layer is downloaded when a step hits it.
 */

export const BUILD_CACHE_CONFIG_TYPE = 'application/vnd.berth.build-cache.config.v1+json';
export const BUILD_CACHE_ARTIFACT_TYPE = 'application/vnd.berth.build-cache.v1';

/** A repository and tag that holds (or will hold) a build cache. */
export type CacheReference = PushTarget;

/** One step of a build as the cache keeps it. */
export interface CacheRecord {
  key: string;
  entry: CacheEntry;
}

/** A cache imported from a registry: its steps, and the download of a layer one of them hits. */
export interface RemoteCache {
  entry(key: string): CacheEntry | undefined;
  /** Brings the layer's blob into the content store; false (reported) when the registry cannot give it. */
  fetch(layer: CachedLayer): Promise<boolean>;
}

/** What the builder asks of the registry for `--cache-from` and `--cache-to`. */
export interface CacheRegistry {
  /** The cache the reference holds, or undefined (with the reason reported) when there is none to use. */
  load(reference: CacheReference, access: RegistryAccess, report: (message: string) => void): Promise<RemoteCache | undefined>;
  /** Pushes the records' layers, the key map and the manifest under the reference's tag; returns the manifest digest. */
  save(
    reference: CacheReference,
    records: readonly CacheRecord[],
    lease: Lease,
    access: RegistryAccess,
    report: (message: string) => void,
  ): Promise<string>;
}

const cachedLayerSchema = z.object({
  digest: digestSchema,
  size: z.number().int().nonnegative(),
  mediaType: z.string().min(1),
  diffId: digestSchema,
  uncompressedSize: z.number().int().nonnegative(),
});

const cacheConfigSchema = z.object({
  layers: z.array(cachedLayerSchema),
  records: z.array(
    z.object({
      key: z.string().min(1),
      created: z.string().min(1),
      /** Index into `layers`; null for a step that changed no file. */
      layer: z.number().int().nonnegative().nullable(),
    }),
  ),
});
type CacheConfig = z.infer<typeof cacheConfigSchema>;

/** The config blob is a key map, a few hundred bytes per step: far below this. */
const MAX_CACHE_CONFIG_BYTES = 16 * 1024 * 1024;

export interface CacheRegistryDependencies {
  content: ContentStore;
  connector: RegistryConnector;
  publisher: ImagePublisher;
}

/** The registry cache over the agent's content store, reached with each build's access (saved credentials or a job's token). */
export class RegistryCacheStore implements CacheRegistry {
  constructor(private readonly deps: CacheRegistryDependencies) {}

  async load(reference: CacheReference, access: RegistryAccess, report: (message: string) => void): Promise<RemoteCache | undefined> {
    const { content } = this.deps;
    const client = await this.deps.connector.reader(reference.registry, access);
    let manifestBytes: Buffer;
    try {
      manifestBytes = (await client.fetchManifest(reference.repository, reference.tag)).bytes;
    } catch (error) {
      if (error instanceof RegistryError && error.status === 404) {
        report(`no build cache at ${formatRepositoryTag(reference)} yet`);
        return undefined;
      }
      throw error;
    }
    const parsed = parseManifest(manifestBytes, undefined);
    if (parsed.kind !== 'image' || parsed.manifest.config.mediaType !== BUILD_CACHE_CONFIG_TYPE) {
      report(`${formatRepositoryTag(reference)} is not a build cache: ignored`);
      return undefined;
    }
    const configDescriptor = parsed.manifest.config;
    if (configDescriptor.size > MAX_CACHE_CONFIG_BYTES)
      throw new Error(`the build cache's key map is ${configDescriptor.size} bytes: too large`);
    const fromRegistry = (digest: string) => (offset: number) => client.fetchBlob(reference.repository, digest, offset);
    await content.ingest(configDescriptor, fromRegistry(configDescriptor.digest));
    const config = parseCacheConfig(await content.readSmall(configDescriptor.digest));
    const entries = new Map(
      config.records.map((record) => [
        record.key,
        { created: record.created, layer: record.layer === null ? null : layerAt(config, record.layer) },
      ]),
    );
    report(`${entries.size} cached steps, ${config.layers.length} layers`);
    return {
      entry: (key) => entries.get(key),
      fetch: async (layer) => {
        try {
          await content.ingest(layer, fromRegistry(layer.digest));
          return true;
        } catch (error) {
          report(`layer ${shortDigest(layer.digest)} of the build cache cannot be fetched: ${(error as Error).message}`);
          return false;
        }
      },
    };
  }

  async save(
    reference: CacheReference,
    records: readonly CacheRecord[],
    lease: Lease,
    access: RegistryAccess,
    report: (message: string) => void,
  ): Promise<string> {
    const { content } = this.deps;
    const config = cacheConfig(records);
    const configBytes = Buffer.from(JSON.stringify(config));
    const configDigest = digestOf(configBytes);
    const manifest = {
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      artifactType: BUILD_CACHE_ARTIFACT_TYPE,
      config: { mediaType: BUILD_CACHE_CONFIG_TYPE, digest: configDigest, size: configBytes.length },
      layers: config.layers.map(({ mediaType, digest, size }) => ({ mediaType, digest, size })),
    };
    const manifestBytes = Buffer.from(JSON.stringify(manifest));
    const manifestDigest = digestOf(manifestBytes);
    if ((await this.currentDigest(reference, access)) === manifestDigest) {
      report(`the cache at ${formatRepositoryTag(reference)} is already this build's (${manifestDigest}): not written again`);
      return manifestDigest;
    }
    await lease.add([configDigest, manifestDigest]);
    await content.writeSmall(configDigest, configBytes);
    await content.writeSmall(manifestDigest, manifestBytes);
    await this.deps.publisher.push(manifestDigest, reference, access, report);
    report(`writing cache manifest ${manifestDigest} done`);
    return manifestDigest;
  }

  /** The digest of the manifest the reference holds now; undefined when it holds none or cannot be read (the save then writes it). */
  private async currentDigest(reference: CacheReference, access: RegistryAccess): Promise<string | undefined> {
    try {
      const client = await this.deps.connector.reader(reference.registry, access);
      return digestOf((await client.fetchManifest(reference.repository, reference.tag)).bytes);
    } catch {
      return undefined;
    }
  }
}

/** `registry/repository:tag`, as progress lines and messages name an image or a cache. */
export function formatRepositoryTag(reference: PushTarget): string {
  return `${reference.registry}/${reference.repository}:${reference.tag}`;
}

/** The key map: records sorted by key and layers in first-use order, so the same build writes the same bytes. */
function cacheConfig(records: readonly CacheRecord[]): CacheConfig {
  const layers: CachedLayer[] = [];
  const indexes = new Map<string, number>();
  const sorted = [...records].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const indexOf = (layer: CachedLayer) => {
    let index = indexes.get(layer.digest);
    if (index === undefined) {
      index = layers.push(cachedLayerSchema.parse(layer)) - 1;
      indexes.set(layer.digest, index);
    }
    return index;
  };
  return {
    layers,
    records: sorted.map(({ key, entry }) => ({ key, created: entry.created, layer: entry.layer ? indexOf(entry.layer) : null })),
  };
}

function parseCacheConfig(bytes: Buffer): CacheConfig {
  let document: unknown;
  try {
    document = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new Error('the build cache’s key map is not JSON');
  }
  const checked = cacheConfigSchema.safeParse(document);
  if (!checked.success) throw new Error(`the build cache’s key map is invalid: ${checked.error.issues[0]?.message ?? 'unknown'}`);
  for (const record of checked.data.records)
    if (record.layer !== null && record.layer >= checked.data.layers.length)
      throw new Error(`the build cache’s key map names layer ${record.layer} of ${checked.data.layers.length}`);
  return checked.data;
}

function layerAt(config: CacheConfig, index: number): CachedLayer {
  return config.layers[index] as CachedLayer;
}
