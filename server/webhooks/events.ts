import type { EventAction } from './webhook-config.js';

/** The request behind an event, as the route saw it: Distribution's `request` and `actor` fields. */
export interface EventOrigin {
  requestId?: string;
  addr?: string;
  host?: string;
  protocol?: string;
  method?: string;
  userAgent?: string;
  user?: string;
}

/** What a service reports after a change or read succeeded; the sink adds the source. */
export interface RegistryEvent {
  action: EventAction;
  repository: string;
  target: { mediaType?: string; digest: string; size?: number; tag?: string };
  /** The source repository of a mount. */
  fromRepository?: string;
  origin?: EventOrigin;
}

/**
 * Where services send events. `emit` resolves once the event is durably queued (one Redis write), and never
 * rejects: a change already committed must not fail because its notification could not be queued.
 */
export interface EventSink {
  emit(event: RegistryEvent): Promise<void>;
}

export const NO_EVENTS: EventSink = { emit: async () => undefined };
