import { AsyncLocalStorage } from 'node:async_hooks';
import type { Context, Next } from 'koa';

const current = new AsyncLocalStorage<Context>();

/**
 * Makes the request being served reachable from code that has no Koa context (services emitting events),
 * without threading it through every call.
 */
export async function requestContext(ctx: Context, next: Next): Promise<void> {
  await current.run(ctx, next);
}

export function currentRequest(): Context | undefined {
  return current.getStore();
}

/** The account a request authenticated as (a token's subject), if any. */
export function requestUser(ctx: Context): string | undefined {
  const subject = (ctx.state.token as { subject?: string } | undefined)?.subject;
  return subject || undefined;
}
