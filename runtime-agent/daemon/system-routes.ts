import path from 'node:path';
import { RootfsDir } from '../spec/rootfs.js';
import { runHostCommand } from '../support/host-command.js';
import { systemPruneSchema, VerbPath, type DiskUsage, type SystemPruneResult } from '../verbs-api.js';
import { familiarName } from '../../oci/reference.js';
import { readRequest, route, sendJson, type Route } from './http-api.js';
import type { VerbServices } from './image-verb-routes.js';

/** `system df` and `system prune`. */
export function systemRoutes(services: VerbServices): Route[] {
  return [
    route('GET', VerbPath.systemDf, async ({ response }) => sendJson(response, 200, await diskUsage(services))),
    route('POST', VerbPath.systemPrune, async ({ request, response }) => {
      const body = await readRequest(request, systemPruneSchema);
      sendJson(response, 200, await systemPrune(services, body));
    }),
  ];
}

/** Bytes under a directory as `du` counts them (0 when it does not exist). */
async function directorySize(directory: string): Promise<number> {
  const output = await runHostCommand('du', ['-sb', directory]).catch(() => '0');
  return Number(output.split(/\s/)[0]) || 0;
}

async function diskUsage(services: VerbServices): Promise<DiskUsage> {
  const records = await services.images.list();
  const containers = services.containers.list(true);
  const layerUsers = new Map<string, Set<string>>();
  for (const record of records)
    for (const layer of record.layers) layerUsers.set(layer.chainId, (layerUsers.get(layer.chainId) ?? new Set()).add(record.configDigest));
  const byId = new Map<string, typeof records>();
  for (const record of records) byId.set(record.configDigest, [...(byId.get(record.configDigest) ?? []), record]);
  const images = [...byId.entries()].map(([id, named]) => {
    const first = named[0] as (typeof records)[number];
    const shared = first.layers.filter((layer) => (layerUsers.get(layer.chainId)?.size ?? 0) > 1);
    return {
      id,
      references: named.map((record) => `${familiarName(record)}:${record.tag ?? '<none>'}`),
      size: first.size,
      sharedSize: shared.reduce((sum, layer) => sum + layer.size, 0),
      containers: containers.filter((container) => container.imageId === id).length,
    };
  });
  const containerRows = await Promise.all(
    containers.map(async (container) => ({
      id: container.id,
      name: container.name,
      image: container.spec.image,
      status: container.state.status,
      sizeRw: await directorySize(path.join(services.containers.directoryOf(container.id), RootfsDir.upper)),
    })),
  );
  const volumes = await Promise.all(
    (await services.containers.volumes()).map(async (volume) => ({
      name: volume.name,
      size: await directorySize(volume.mountpoint),
      links: volume.usedBy.length,
    })),
  );
  return { images, containers: containerRows, volumes, buildCache: { count: 0, size: 0 } };
}

/**
 * docker system prune: stopped containers, then (with `all`) every image no container uses, (with `volumes`)
 * every volume none mounts, then the content and snapshots nothing references any more.
 */
async function systemPrune(services: VerbServices, options: { all: boolean; volumes: boolean }): Promise<SystemPruneResult> {
  const result: SystemPruneResult = { deletedContainers: [], deletedImages: [], deletedVolumes: [], reclaimedBytes: 0 };
  for (const container of services.containers.list(true)) {
    if (container.state.status === 'running' || container.state.status === 'restarting') continue;
    result.reclaimedBytes += await directorySize(path.join(services.containers.directoryOf(container.id), RootfsDir.upper));
    await services.containers.remove(container.id, false);
    result.deletedContainers.push(container.id);
  }
  if (options.all) {
    const used = new Set(services.containers.list(true).map((container) => container.imageId));
    for (const record of await services.images.list()) {
      if (used.has(record.configDigest)) continue;
      await services.images.remove(record.reference);
      result.deletedImages.push(`untagged: ${familiarName(record)}${record.tag ? `:${record.tag}` : `@${record.digest}`}`);
    }
  }
  if (options.volumes) {
    for (const volume of await services.containers.volumes())
      if (volume.usedBy.length === 0) result.reclaimedBytes += await directorySize(volume.mountpoint);
    result.deletedVolumes = await services.containers.pruneVolumes();
  }
  const collected = await services.collector.collect();
  result.deletedImages.push(...collected.deletedBlobs.map((digest) => `deleted: ${digest}`));
  result.reclaimedBytes += collected.reclaimedBytes;
  return result;
}
