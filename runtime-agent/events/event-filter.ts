import { CodedError } from '../../platform/errors.js';
import { AgentErrors } from '../errors.js';
import type { EventMessage } from './event-message.js';

/** docker's event filters: values of one key are alternatives, different keys must all match. */
export type EventFilters = ReadonlyMap<string, readonly string[]>;

const KEYS = new Set(['container', 'event', 'image', 'type']);
/** Actions docker lets a filter name without their `: detail` (`event=health_status` matches `health_status: healthy`). */
const PREFIX_ACTIONS = new Set(['health_status', 'exec_create', 'exec_start']);

/**
 * The API's `filters` parameter as docker sends it: JSON, each key to a list of values or to a
 * `{"value": true}` set. An unknown key is refused as docker refuses it.
 */
export function parseEventFilters(text: string | null): EventFilters {
  if (text === null || text === '') return new Map();
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch {
    throw new CodedError(AgentErrors.REQUEST_INVALID, `filters must be JSON, not ${JSON.stringify(text)}`);
  }
  if (typeof document !== 'object' || document === null || Array.isArray(document))
    throw new CodedError(AgentErrors.REQUEST_INVALID, 'filters must be a JSON object of names to values');
  const filters = new Map<string, string[]>();
  for (const [key, values] of Object.entries(document)) {
    if (!KEYS.has(key)) throw new CodedError(AgentErrors.REQUEST_INVALID, `invalid filter '${key}'`);
    const list: unknown[] = Array.isArray(values) ? values : typeof values === 'object' && values !== null ? Object.keys(values) : [values];
    if (!list.every((value) => typeof value === 'string'))
      throw new CodedError(AgentErrors.REQUEST_INVALID, `the values of filter '${key}' must be strings`);
    filters.set(key, list as string[]);
  }
  return filters;
}

export function matchesFilters(message: EventMessage, filters: EventFilters): boolean {
  return [...filters].every(([key, values]) => values.length === 0 || values.some((value) => matchesOne(message, key, value)));
}

function matchesOne(message: EventMessage, key: string, value: string): boolean {
  switch (key) {
    case 'type':
      return message.Type === value;
    case 'event':
      return message.Action === value || (PREFIX_ACTIONS.has(value) && message.Action.startsWith(`${value}:`));
    case 'container':
      return message.Type === 'container' && matchesIdOrName(message, value);
    case 'image':
      return message.Type === 'image' ? matchesIdOrName(message, value) : message.Actor.Attributes.image === value;
    default:
      return false;
  }
}

/** docker's fuzzy match: the whole id or name, or a prefix of it. */
function matchesIdOrName(message: EventMessage, value: string): boolean {
  const name = message.Actor.Attributes.name ?? '';
  return message.Actor.ID.startsWith(value) || name.startsWith(value);
}
