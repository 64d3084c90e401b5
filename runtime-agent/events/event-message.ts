/** docker's event message (`docker events --format '{{json .}}'`, GET /events), for containers and images. */
export interface EventMessage {
  /** Deprecated in docker's API but still sent: the action, the actor's id and (containers) the image. */
  status: string;
  id: string;
  from?: string;
  Type: EventType;
  Action: string;
  Actor: { ID: string; Attributes: Record<string, string> };
  scope: 'local';
  /** Unix seconds. */
  time: number;
  /** Unix nanoseconds as decimal digits: more than a JavaScript number holds exactly; a JSON number on the wire. */
  timeNano: string;
}

export type EventType = 'container' | 'image';

/** One NDJSON line of the event stream, `timeNano` written as the integer docker sends. */
export function eventLine(message: EventMessage): string {
  return JSON.stringify(message).replace(/"timeNano":"(\d+)"}$/, '"timeNano":$1}');
}

/** A line of the stream read back, `timeNano` kept exact. */
export function parseEventLine(line: string): EventMessage {
  return JSON.parse(line.replace(/"timeNano":(\d+)}$/, '"timeNano":"$1"}')) as EventMessage;
}
