import { createServer, type Server } from 'node:http';
import type { ContainerManager } from '../container/container-manager.js';
import { containerRoutes } from './container-routes.js';
import { dispatch } from './http-api.js';
import { imageRoutes, type ImageServices } from './image-routes.js';
import { verbRoutes, type VerbServices } from './image-verb-routes.js';
import { volumeRoutes } from './volume-routes.js';

export interface ApiServices extends ImageServices {
  containers: ContainerManager;
  verbs: VerbServices;
}

/** The daemon's local HTTP/JSON API. Errors are `{"message": ...}` with a status; pulls, logs and exec stream NDJSON. */
export function createApiServer(services: ApiServices): Server {
  const routes = [
    ...imageRoutes(services),
    ...containerRoutes(services.containers),
    ...volumeRoutes(services.containers),
    ...verbRoutes(services.verbs),
  ];
  return createServer((request, response) => void dispatch(routes, request, response, services.logger));
}
