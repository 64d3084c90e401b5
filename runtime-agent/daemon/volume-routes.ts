import { ApiPath, volumeRequestSchema } from '../api.js';
import type { ContainerManager } from '../container/container-manager.js';
import { readRequest, route, sendJson, type Route } from './http-api.js';

export function volumeRoutes(manager: ContainerManager): Route[] {
  return [
    route('GET', ApiPath.volumes, async ({ response }) => sendJson(response, 200, await manager.volumes())),
    route('POST', ApiPath.volumes, async ({ request, response }) => {
      const body = await readRequest(request, volumeRequestSchema);
      sendJson(response, 201, await manager.createVolume(body.name));
    }),
    route('POST', `${ApiPath.volumes}/prune`, async ({ response }) => sendJson(response, 200, { deleted: await manager.pruneVolumes() })),
    route('DELETE', `${ApiPath.volumes}/:name`, async ({ response, params }) => {
      await manager.removeVolume(decodeURIComponent(params.name ?? ''));
      sendJson(response, 200, {});
    }),
  ];
}
