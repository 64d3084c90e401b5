import { parseReference } from '../../oci/reference.js';
import type { ContainerManager } from '../container/container-manager.js';
import { readLogs } from '../container/logs/log-reader.js';
import { parsePublish } from '../container/run-options.js';
import type { ImagePuller } from '../image/image-puller.js';
import type { RegistryAccess, RegistryConnector } from '../registry/registry-access.js';
import type { ReplicaRuntime } from './converger.js';

export interface DaemonParts {
  containers: ContainerManager;
  puller: ImagePuller;
  connector: RegistryConnector;
  /** The node's pull token for its registry. */
  pullAccess: RegistryAccess;
}

/** The converger's runtime: the daemon's own container manager and puller, as `run` and `pull` use them. */
export function daemonReplicas(parts: DaemonParts): ReplicaRuntime {
  const { containers } = parts;
  return {
    containers: () => containers.list(true),
    pull: async (text) => {
      const reference = parseReference(text);
      await parts.puller.pull(reference, await parts.connector.reader(reference.registry, parts.pullAccess), () => undefined);
    },
    create: (request) => containers.create(request, false),
    start: async (id) => {
      await containers.start(id);
    },
    stop: async (id) => {
      await containers.stop(id);
    },
    remove: async (id) => {
      await containers.remove(id, true);
    },
    movePorts: async (fromId, toId, publish) => {
      await containers.movePorts(fromId, toId, publish.flatMap(parsePublish));
    },
    logs: (id, options) => readLogs(containers.logDirectory(id), { ...options, stopWhen: containers.runEnded(id) }),
  };
}
