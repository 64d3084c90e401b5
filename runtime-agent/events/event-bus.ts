import type { EventHistory } from './event-history.js';
import { matchesFilters, type EventFilters } from './event-filter.js';
import type { EventMessage, EventType } from './event-message.js';

/** What a publisher says; the bus adds the times and docker's deprecated fields. */
export interface EventInput {
  Type: EventType;
  Action: string;
  Actor: { ID: string; Attributes: Record<string, string> };
}

export interface Subscription {
  /** The kept events in the asked window, oldest first; none unless `since` or `until` was given (docker's rule). */
  past: EventMessage[];
  unsubscribe(): void;
}

/**
 * The agent's event stream: each event goes to the history and to every live subscriber whose filters it
 * matches. A subscription takes its past and joins the live stream at one instant, so nothing falls between.
 */
export class EventBus {
  private readonly listeners = new Set<(message: EventMessage) => void>();
  private lastNano = 0n;

  constructor(private readonly history: EventHistory) {}

  publish(input: EventInput): EventMessage {
    const timeNano = this.now();
    const message: EventMessage = {
      status: input.Action,
      id: input.Actor.ID,
      ...(input.Type === 'container' && input.Actor.Attributes.image !== undefined ? { from: input.Actor.Attributes.image } : {}),
      ...input,
      scope: 'local',
      time: Number(timeNano / 1_000_000_000n),
      timeNano: String(timeNano),
    };
    this.history.add(message);
    for (const listener of this.listeners) listener(message);
    return message;
  }

  subscribe(
    window: { since: bigint | undefined; until: bigint | undefined },
    filters: EventFilters,
    listener: (message: EventMessage) => void,
  ): Subscription {
    const wanted = (message: EventMessage) => matchesFilters(message, filters);
    const past =
      window.since === undefined && window.until === undefined ? [] : this.history.between(window.since, window.until).filter(wanted);
    const live = (message: EventMessage) => {
      if (wanted(message)) listener(message);
    };
    this.listeners.add(live);
    return { past, unsubscribe: () => this.listeners.delete(live) };
  }

  /** Wall-clock nanoseconds, strictly increasing so that every event has its own time and order. */
  private now(): bigint {
    const wall = BigInt(Date.now()) * 1_000_000n + (process.hrtime.bigint() % 1_000_000n);
    this.lastNano = wall > this.lastNano ? wall : this.lastNano + 1n;
    return this.lastNano;
  }
}
