import type { ServerResponse } from 'node:http';
import { ApiPath } from '../api.js';
import { CodedError } from '../../platform/errors.js';
import { AgentErrors } from '../errors.js';
import type { EventBus } from '../events/event-bus.js';
import { parseEventFilters } from '../events/event-filter.js';
import { eventLine, type EventMessage } from '../events/event-message.js';
import { route, type Route } from './http-api.js';

/**
 * `GET /v1/events?since=&until=&filters=`: docker's event stream as NDJSON. With `since` (or `until`) the
 * kept history in that window comes first; then live events until `until` or until the client goes.
 * Times are unix seconds (with a fraction) or RFC 3339.
 */
export function eventRoutes(bus: EventBus): Route[] {
  return [
    route('GET', ApiPath.events, async ({ response, url }) => {
      const since = timeParameter(url.searchParams.get('since'), 'since');
      const until = timeParameter(url.searchParams.get('until'), 'until');
      if (since !== undefined && until !== undefined && since > until)
        throw new CodedError(AgentErrors.REQUEST_INVALID, '`since` time cannot be after `until` time');
      const filters = parseEventFilters(url.searchParams.get('filters'));
      response.writeHead(200, { 'Content-Type': 'application/x-ndjson' });
      response.flushHeaders();
      const send = (message: EventMessage) => {
        if (!response.destroyed) response.write(`${eventLine(message)}\n`);
      };
      const subscription = bus.subscribe({ since, until }, filters, send);
      try {
        subscription.past.forEach(send);
        const remainingMs = until === undefined ? undefined : Number(until / 1_000_000n) - Date.now();
        if (remainingMs === undefined || remainingMs > 0) await clientGoneOr(response, remainingMs);
      } finally {
        subscription.unsubscribe();
      }
      response.end();
    }),
  ];
}

/** Waits until the client disconnects or, when given, `ms` have passed. */
function clientGoneOr(response: ServerResponse, ms: number | undefined): Promise<void> {
  return new Promise((resolve) => {
    const timer = ms === undefined ? undefined : setTimeout(resolve, ms);
    response.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** Unix nanoseconds of `1700000000`, `1700000000.123456789` or an RFC 3339 time. */
function timeParameter(value: string | null, name: string): bigint | undefined {
  if (value === null || value === '') return undefined;
  const unix = /^(\d+)(?:\.(\d{1,9}))?$/.exec(value);
  if (unix) return BigInt(unix[1] ?? '0') * 1_000_000_000n + BigInt((unix[2] ?? '').padEnd(9, '0'));
  const ms = Date.parse(value);
  if (Number.isNaN(ms))
    throw new CodedError(AgentErrors.REQUEST_INVALID, `${name} must be unix seconds or an RFC 3339 time, not ${JSON.stringify(value)}`);
  return BigInt(ms) * 1_000_000n;
}
