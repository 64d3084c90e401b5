import { parseReference } from '../../oci/reference.js';
import type { ContainerManager } from '../container/container-manager.js';
import { readLogs } from '../container/logs/log-reader.js';
import { parsePublish } from '../container/run-options.js';
import type { ImagePuller } from '../image/image-puller.js';
import type { CredentialStore } from '../registry/credential-store.js';
import type { Credentials } from '../registry/registry-auth.js';
import type { RegistryClient } from '../registry/registry-client.js';
import type { ReplicaRuntime } from './converger.js';

export interface DaemonParts {
  containers: ContainerManager;
  puller: ImagePuller;
  credentials: CredentialStore;
  registryClient: (registry: string, credentials: Credentials | undefined) => RegistryClient;
}

/** The converger's runtime: the daemon's own container manager and puller, as `run` and `pull` use them. */
export function daemonReplicas(parts: DaemonParts): ReplicaRuntime {
  const { containers } = parts;
  return {
    containers: () => containers.list(true),
    pull: async (text) => {
      const reference = parseReference(text);
      const client = parts.registryClient(reference.registry, await parts.credentials.get(reference.registry));
      await parts.puller.pull(reference, client, () => undefined);
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
