import { randomUUID } from 'node:crypto';
import type { Logger } from '../../platform/logger.js';
import { MediaType } from '../../oci/media-types.js';
import type { EventSource } from './envelope.js';
import { queueEnvelope, wantsRepository } from './notifier.js';
import type { WebhookQueue } from './queue.js';
import type { BuildAction, WebhookEndpoint } from './webhook-config.js';

/** A build as its events describe it. */
export interface BuildEventSubject {
  id: string;
  project: string;
  repository: string;
  ref: { type: string; name: string };
  commit: string;
  trigger: string;
  worker: string;
  state: string;
  tags: string[];
  digest: string;
  error: string;
}

/** Where the build queue reports builds starting and ending; like EventSink.emit, it never rejects. */
export interface BuildEventSink {
  emit(action: BuildAction, build: BuildEventSubject): Promise<void>;
}

export const NO_BUILD_EVENTS: BuildEventSink = { emit: async () => undefined };

/**
 * Build events in the push events' envelope (`{"events": [...]}`, signed and delivered by the same queue
 * and workers): `target` names the repository and, once built, the manifest and its first tag; `build`
 * carries the rest. Only endpoints whose `actions` list the build action receive it.
 */
export class BuildEventNotifier implements BuildEventSink {
  constructor(
    private readonly endpoints: WebhookEndpoint[],
    private readonly queue: WebhookQueue,
    private readonly source: EventSource,
    private readonly logger: Logger,
    private readonly nudge: (endpoint: string) => void,
  ) {}

  async emit(action: BuildAction, build: BuildEventSubject): Promise<void> {
    const targets = this.endpoints
      .filter((endpoint) => endpoint.actions.includes(action) && wantsRepository(endpoint, build.repository))
      .map((endpoint) => endpoint.name);
    if (targets.length === 0) return;
    const id = randomUUID();
    const event = {
      id,
      timestamp: new Date().toISOString(),
      action,
      target: {
        repository: build.repository,
        ...(build.digest
          ? { mediaType: MediaType.ociManifest, digest: build.digest, tag: build.tags[0], url: this.manifestUrl(build) }
          : {}),
      },
      build,
      request: {},
      actor: { name: `build-job:${build.id}` },
      source: this.source,
    };
    await queueEnvelope(this.queue, this.nudge, targets, event, build.repository).catch((error: unknown) =>
      this.logger.error({ err: error, action, build: build.id }, 'build event could not be queued'),
    );
  }

  private manifestUrl(build: BuildEventSubject): string {
    return `http://${this.source.addr}/v2/${build.repository}/manifests/${build.digest}`;
  }
}
