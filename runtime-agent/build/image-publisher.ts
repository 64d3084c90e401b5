import type { ContentStore } from '../content/content-store.js';
import { pushImage, type PushResult, type PushTarget } from '../registry/image-pusher.js';
import type { RegistryAccess, RegistryConnector } from '../registry/registry-access.js';
import type { PushEvent } from '../verbs-api.js';

/** How the builder sends what it made to a registry: `--push` of the image, `--cache-to` of the cache. */
export interface ImagePublisher {
  /** Pushes a manifest in the content store, its config and layers under the target's tag; progress as lines. */
  push(manifestDigest: string, target: PushTarget, access: RegistryAccess, report: (line: string) => void): Promise<PushResult>;
}

/** `docker push`'s code (image-pusher.ts) with the build's access to the registry. */
export function registryPublisher(content: ContentStore, connector: RegistryConnector): ImagePublisher {
  return {
    push: async (manifestDigest, target, access, report) =>
      pushImage({ manifestDigest, mountFrom: undefined }, target, {
        content,
        uploadClient: await connector.uploader(target.registry, target.repository, access),
        report: (event) => {
          const line = pushLine(event);
          if (line !== undefined) report(line);
        },
      }),
  };
}

/** A blob's outcome, as BuildKit's plain progress names pushed layers; byte counts are left out. */
function pushLine(event: PushEvent): string | undefined {
  if (event.type !== 'layer' || event.action === 'Preparing' || event.action === 'Pushing') return undefined;
  const outcome = event.action === 'Pushed' ? 'done' : event.action.toLowerCase();
  return `pushing layer ${event.id} ${outcome}`;
}
