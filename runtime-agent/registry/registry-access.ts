import type { CredentialStore } from './credential-store.js';
import { HttpRegistryClient, type RegistryClient } from './registry-client.js';
import { HttpUploadClient, type UploadClient } from './upload-client.js';

/**
 * Who the agent is to a registry: itself, with the credentials `login` saved, or a build job or a deployment
 * node, with a token the registry minted for that job's or node's repositories alone. The token is asked for
 * at each use: such tokens are short-lived, a build may outlast one, and a node's assignments change.
 */
export type RegistryAccess = { type: 'saved-credentials' } | { type: 'scoped-token'; token: () => Promise<string | null> };

export const SAVED_CREDENTIALS: RegistryAccess = { type: 'saved-credentials' };

/** Registry clients that present the access they are given. */
export interface RegistryConnector {
  reader(registry: string, access: RegistryAccess): Promise<RegistryClient>;
  uploader(registry: string, repository: string, access: RegistryAccess): Promise<UploadClient>;
}

export interface RegistryConnectorOptions {
  insecureRegistries: readonly string[];
  stallTimeoutMs: number;
  credentials: CredentialStore;
}

export function registryConnector(options: RegistryConnectorOptions): RegistryConnector {
  const authOf = async (registry: string, access: RegistryAccess) =>
    access.type === 'saved-credentials'
      ? { credentials: await options.credentials.get(registry), bearerToken: undefined }
      : { credentials: undefined, bearerToken: (await access.token()) ?? undefined };
  return {
    reader: async (registry, access) =>
      new HttpRegistryClient(registry, {
        insecureRegistries: options.insecureRegistries,
        stallTimeoutMs: options.stallTimeoutMs,
        ...(await authOf(registry, access)),
      }),
    uploader: async (registry, repository, access) =>
      new HttpUploadClient(registry, repository, {
        insecureRegistries: options.insecureRegistries,
        mountSource: undefined,
        ...(await authOf(registry, access)),
      }),
  };
}
