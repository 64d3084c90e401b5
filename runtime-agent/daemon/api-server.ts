import { createServer, type Server } from 'node:http';
import type { ContainerManager } from '../container/container-manager.js';
import { terminalUpgrades } from './attach-routes.js';
import { buildRoutes, type BuildRouteServices } from './build-routes.js';
import { containerRoutes } from './container-routes.js';
import type { EventBus } from '../events/event-bus.js';
import { eventRoutes } from './event-routes.js';
import { dispatch } from './http-api.js';
import { imageRoutes, type ImageServices } from './image-routes.js';
import { verbRoutes, type VerbServices } from './image-verb-routes.js';
import { volumeRoutes } from './volume-routes.js';

export interface ApiServices extends ImageServices, BuildRouteServices {
  containers: ContainerManager;
  events: EventBus;
  verbs: VerbServices;
}

/** The daemon's local HTTP/JSON API. Errors are `{"message": ...}` with a status; pulls, logs and exec stream NDJSON. */
export function createApiServer(services: ApiServices): Server {
  const routes = [
    ...imageRoutes(services),
    ...containerRoutes(services.containers),
    ...volumeRoutes(services.containers),
    ...eventRoutes(services.events),
    ...buildRoutes(services),
    ...verbRoutes(services.verbs),
  ];
  const server = createServer((request, response) => void dispatch(routes, request, response, services.logger));
  const terminals = terminalUpgrades(services.containers, services.logger);
  server.on('upgrade', terminals.accept);
  const closeConnections = server.closeAllConnections.bind(server);
  server.closeAllConnections = () => {
    closeConnections();
    terminals.closeAll();
  };
  return server;
}
