import type { Context } from 'koa';
import { RegistryError } from '../errors.js';

// Token requests and admin calls are a few hundred bytes; anything far larger is not one of them.
const LIMIT_BYTES = 64 * 1024;

export async function readSmallBody(ctx: Context): Promise<string> {
  const parts: Buffer[] = [];
  let total = 0;
  for await (const part of ctx.req as AsyncIterable<Buffer>) {
    total += part.length;
    if (total > LIMIT_BYTES) throw new RegistryError('SIZE_INVALID', 413, `request body exceeds ${LIMIT_BYTES} bytes`);
    parts.push(part);
  }
  return Buffer.concat(parts).toString('utf8');
}

export async function readJsonBody(ctx: Context): Promise<Record<string, unknown>> {
  const text = await readSmallBody(ctx);
  try {
    const parsed: unknown = JSON.parse(text || '{}');
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) return parsed as Record<string, unknown>;
  } catch {
    // Reported below, as for any other non-object.
  }
  throw new RegistryError('UNSUPPORTED', 400, 'the request body must be a JSON object');
}

export async function readFormBody(ctx: Context): Promise<URLSearchParams> {
  return new URLSearchParams(await readSmallBody(ctx));
}
