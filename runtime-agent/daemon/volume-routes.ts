import { ApiPath } from '../api.js';
import type { ContainerManager } from '../container/container-manager.js';
import { HttpError, readJson, route, sendJson, type Route } from './http-api.js';

export function volumeRoutes(manager: ContainerManager): Route[] {
  return [
    route('GET', ApiPath.volumes, async ({ response }) => sendJson(response, 200, await manager.volumes())),
    route('POST', ApiPath.volumes, async ({ request, response }) => {
      const body = (await readJson(request)) as { name?: unknown };
      if (typeof body.name !== 'string') throw new HttpError(400, 'name is required');
      sendJson(response, 201, await manager.createVolume(body.name));
    }),
    route('POST', `${ApiPath.volumes}/prune`, async ({ response }) => sendJson(response, 200, { deleted: await manager.pruneVolumes() })),
    route('DELETE', `${ApiPath.volumes}/:name`, async ({ response, params }) => {
      await manager.removeVolume(decodeURIComponent(params.name ?? ''));
      sendJson(response, 200, {});
    }),
  ];
}
