import { randomUUID } from 'node:crypto';
import type { RegistryEvent } from './events.js';

// Blob events name the layer's generic type, as Distribution does; everything else is a manifest.
export const BLOB_MEDIA_TYPE = 'application/octet-stream';

export const ENVELOPE_MEDIA_TYPE = 'application/vnd.docker.distribution.events.v2+json';

/** Identifies the registry process in every event, as Distribution's `source` does. */
export interface EventSource {
  addr: string;
  instanceID: string;
}

/** One event in Distribution's notification format, so consumers written for registry:2 read it unchanged. */
export interface DistributionEvent {
  id: string;
  timestamp: string;
  action: RegistryEvent['action'];
  target: {
    mediaType?: string;
    size?: number;
    length?: number;
    digest: string;
    repository: string;
    fromRepository?: string;
    url: string;
    tag?: string;
  };
  request: { id?: string; addr?: string; host?: string; method?: string; useragent?: string };
  actor: { name?: string };
  source: EventSource;
}

export function distributionEvent(event: RegistryEvent, source: EventSource): DistributionEvent {
  const { repository, target, origin } = event;
  const kind = target.mediaType && isBlobType(target.mediaType) ? 'blobs' : 'manifests';
  const base = origin?.host ? `${origin.protocol ?? 'http'}://${origin.host}` : `http://${source.addr}`;
  return {
    id: randomUUID(),
    timestamp: new Date().toISOString(),
    action: event.action,
    target: {
      mediaType: target.mediaType,
      size: target.size,
      // Distribution sends the size twice; older consumers read `length`.
      length: target.size,
      digest: target.digest,
      repository,
      fromRepository: event.fromRepository,
      url: `${base}/v2/${repository}/${kind}/${target.digest}`,
      tag: target.tag,
    },
    request: origin
      ? { id: origin.requestId, addr: origin.addr, host: origin.host, method: origin.method, useragent: origin.userAgent }
      : {},
    actor: { name: origin?.user },
    source,
  };
}

function isBlobType(mediaType: string): boolean {
  return mediaType === BLOB_MEDIA_TYPE;
}
