import type { Command } from 'commander';
import { parseEventLine } from '../events/event-message.js';
import type { AgentClient } from './agent-client.js';
import { parseSince } from './container-commands.js';
import { renderOne } from './format-template.js';

/** `berth-agent events`: docker's event stream, its filters, time window and output. */

type ClientOf = (command: Command) => AgentClient;

interface EventsFlags {
  since?: string;
  until?: string;
  filter: string[];
  format?: string;
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

export function addEventCommands(program: Command, client: ClientOf): void {
  program
    .command('events')
    .description('stream container and image events (create, start, die, health_status, pull, ...)')
    .option('--since <time>', 'replay kept events from a time (2026-11-23T10:00:00Z, unix seconds) or a while ago (10m)')
    .option('--until <time>', 'stop at a time (or a while ago); without it, stream until interrupted')
    .option('-f, --filter <key=value>', 'type=container|image, event=NAME, container=NAME|ID, image=NAME', collect, [])
    .option('--format <template>', "format each event with a template, e.g. '{{json .}}' or '{{.Action}} {{.Actor.ID}}'")
    .action(async (flags: EventsFlags, command: Command) => {
      for await (const line of client(command).events(eventsQuery(flags))) console.log(formatEvent(line, flags.format));
    });
}

function eventsQuery(flags: EventsFlags, now = Date.now()): URLSearchParams {
  const query = new URLSearchParams();
  if (flags.since !== undefined) query.set('since', unixSeconds(parseSince(flags.since, now)));
  if (flags.until !== undefined) query.set('until', unixSeconds(parseSince(flags.until, now)));
  const filters: Record<string, string[]> = {};
  for (const filter of flags.filter) {
    const at = filter.indexOf('=');
    if (at <= 0) throw new Error(`bad format of filter (expected name=value): ${filter}`);
    const key = filter.slice(0, at);
    filters[key] = [...(filters[key] ?? []), filter.slice(at + 1)];
  }
  if (flags.filter.length > 0) query.set('filters', JSON.stringify(filters));
  return query;
}

function unixSeconds(date: Date): string {
  return (date.getTime() / 1000).toFixed(3);
}

/** docker's line (`<time> container start <id> (image=..., name=...)`), the line itself for `{{json .}}`, or the template. */
export function formatEvent(line: string, template: string | undefined): string {
  if (template?.trim() === '{{json .}}') return line;
  const message = parseEventLine(line);
  if (template !== undefined) return renderOne(template, message);
  const attributes = Object.entries(message.Actor.Attributes)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([key, value]) => `${key}=${value}`);
  const suffix = attributes.length > 0 ? ` (${attributes.join(', ')})` : '';
  return `${localTimestamp(message.timeNano)} ${message.Type} ${message.Action} ${message.Actor.ID}${suffix}`;
}

/** RFC 3339 with nanoseconds in this machine's time zone (`2026-12-07T03:04:05.123456789+01:00`), as docker prints event times. */
function localTimestamp(timeNano: string): string {
  const nanos = BigInt(timeNano);
  const date = new Date(Number(nanos / 1_000_000n));
  const offsetMinutes = -date.getTimezoneOffset();
  const local = new Date(date.getTime() + offsetMinutes * 60_000).toISOString().slice(0, 19);
  const fraction = String(nanos % 1_000_000_000n).padStart(9, '0');
  const zone =
    offsetMinutes === 0
      ? 'Z'
      : `${offsetMinutes > 0 ? '+' : '-'}${String(Math.floor(Math.abs(offsetMinutes) / 60)).padStart(2, '0')}:${String(Math.abs(offsetMinutes) % 60).padStart(2, '0')}`;
  return `${local}.${fraction}${zone}`;
}
