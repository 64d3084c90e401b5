import { STATUS_CODES } from 'node:http';
import type { CodedError } from './errors.js';

/**
 * A CodedError's usual JSON answer as the raw bytes of an HTTP/1.1 response that closes the connection, for a
 * connection no HTTP server writes to: one upgraded away from it (the agent's attach), or one refused before
 * its request was read (the registry's connection limits).
 */
export function rawErrorResponse(error: CodedError, extraHeaders: Record<string, string> = {}): string {
  const body = JSON.stringify(error.toJSON());
  const headers = {
    'Content-Type': 'application/json',
    'Content-Length': String(Buffer.byteLength(body)),
    ...extraHeaders,
    Connection: 'close',
  };
  const lines = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`);
  return `HTTP/1.1 ${error.status} ${STATUS_CODES[error.status] ?? ''}\r\n${lines.join('')}\r\n${body}`;
}
