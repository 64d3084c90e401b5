import type { Context } from 'koa';
import { CodedError, DistributionErrors } from '../../platform/errors.js';
import type { Page, PageResult } from '../metadata/metadata-store.js';

/** Reads `n` and `last`. Without `n` a listing is one page of the maximum size. */
export function parsePage(ctx: Context, maxPageSize: number): Page {
  const n = singleQueryValue(ctx, 'n');
  const last = singleQueryValue(ctx, 'last');
  let limit = maxPageSize;
  if (n !== undefined) {
    if (!/^\d+$/.test(n) || Number(n) > maxPageSize) {
      throw new CodedError(DistributionErrors.PAGINATION_NUMBER_INVALID, `n must be an integer from 0 to ${maxPageSize}`, {
        detail: { n, max: maxPageSize },
      });
    }
    limit = Number(n);
  }
  return { limit, after: last || undefined };
}

/** Adds the RFC 5988 Link header for the next page when there is one. */
export function setNextLink(ctx: Context, page: Page, result: PageResult): void {
  const lastItem = result.items[result.items.length - 1];
  if (!result.more || lastItem === undefined) return;
  const query = new URLSearchParams({ n: String(page.limit), last: lastItem });
  ctx.set('Link', `<${ctx.path}?${query.toString()}>; rel="next"`);
}

function singleQueryValue(ctx: Context, name: string): string | undefined {
  const value = ctx.query[name];
  return Array.isArray(value) ? value[0] : value;
}
