import type { ContentStore } from '../content/content-store.js';
import type { Snapshotter } from '../snapshot/snapshotter.js';
import { familiarName, parseReference } from '../../oci/reference.js';
import type { HistoryEntry, ImageInspect } from '../verbs-api.js';
import { findImage } from './image-lookup.js';
import type { ImageRecord, ImageStore } from './image-store.js';

/** `tag`, `image inspect` and `history`: views and names of an image already in the store. */

/** `docker tag SOURCE TARGET`: a second reference to the same image (same manifest, config and layers). */
export async function tagImage(images: ImageStore, source: string, target: string): Promise<ImageRecord> {
  const image = await findImage(source, images);
  const reference = parseReference(target);
  const name = `${reference.registry}/${reference.repository}`;
  const tag = reference.tag ?? 'latest';
  const record: ImageRecord = {
    ...image,
    reference: `${name}:${tag}`,
    registry: reference.registry,
    repository: reference.repository,
    tag,
  };
  await images.put(record);
  return record;
}

/** The names an image id goes by: `name:tag` for each tagged record, as docker's RepoTags. */
export function repoTags(records: readonly ImageRecord[], imageId: string): string[] {
  return records
    .filter((record) => record.configDigest === imageId && record.tag !== undefined)
    .map((record) => `${familiarName(record)}:${record.tag}`);
}

interface RawConfig {
  created?: string;
  architecture?: string;
  os?: string;
  variant?: string;
  config?: Record<string, unknown> | null;
  rootfs?: { type: string; diff_ids: string[] };
  history?: HistoryStep[];
}

interface HistoryStep {
  created?: string;
  created_by?: string;
  comment?: string;
  empty_layer?: boolean;
}

async function rawConfig(content: ContentStore, image: ImageRecord): Promise<RawConfig> {
  return JSON.parse((await content.readSmall(image.configDigest)).toString('utf8')) as RawConfig;
}

export async function inspectImage(images: ImageStore, content: ContentStore, nameOrId: string): Promise<ImageInspect> {
  const image = await findImage(nameOrId, images);
  const config = await rawConfig(content, image);
  const all = await images.list();
  const sameImage = all.filter((record) => record.configDigest === image.configDigest);
  return {
    Id: image.configDigest,
    RepoTags: repoTags(all, image.configDigest),
    RepoDigests: [...new Set(sameImage.map((record) => `${familiarName(record)}@${record.digest}`))],
    Created: config.created ?? '',
    Architecture: config.architecture ?? image.platform.architecture,
    Os: config.os ?? image.platform.os,
    ...(config.variant ? { Variant: config.variant } : {}),
    Size: image.size,
    Config: config.config ?? {},
    RootFS: { Type: config.rootfs?.type ?? 'layers', Layers: config.rootfs?.diff_ids ?? [] },
  };
}

/**
 * `docker history`: the config's history, newest first; each non-empty entry takes the next layer's size.
 * Images without history (some built by hand) get one entry per layer.
 */
export async function imageHistory(
  images: ImageStore,
  content: ContentStore,
  snapshots: Snapshotter,
  nameOrId: string,
): Promise<HistoryEntry[]> {
  const image = await findImage(nameOrId, images);
  const config = await rawConfig(content, image);
  const sizes = await Promise.all(image.layers.map(async (layer) => (await snapshots.info(layer.chainId))?.size ?? layer.size));
  const history = config.history ?? image.layers.map((): HistoryStep => ({ created: config.created }));
  let layer = 0;
  const entries = history.map((step) => ({
    id: '<missing>',
    created: step.created,
    createdBy: step.created_by ?? '',
    size: step.empty_layer ? 0 : (sizes[layer++] ?? 0),
    comment: step.comment ?? '',
  }));
  entries.reverse();
  if (entries[0]) entries[0].id = image.configDigest;
  return entries;
}
