import type { Context } from 'koa';

/** A response with no body and Content-Length: 0 (Koa would otherwise turn a null body into a 204). */
export function emptyResponse(ctx: Context, status: number, headers: Record<string, string> = {}): void {
  ctx.status = status;
  for (const [name, value] of Object.entries(headers)) ctx.set(name, value);
  if (status === 204) return;
  ctx.body = '';
  ctx.remove('Content-Type');
}
