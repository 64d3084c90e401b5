import { CodedError, DistributionErrors } from '../../platform/errors.js';
import type { MetadataStore, Page, PageResult } from '../metadata/metadata-store.js';

// Repositories read per round trip when the catalog is filtered for an account.
const FILTERED_BATCH = 500;

/** Tag and repository listings, served from the metadata indexes at O(page) cost. */
export class ListingService {
  constructor(private readonly metadata: MetadataStore) {}

  async tags(repository: string, page: Page): Promise<PageResult> {
    const result = await this.metadata.listTags(repository, page);
    if (!result) throw new CodedError(DistributionErrors.NAME_UNKNOWN, undefined, { detail: { name: repository } });
    return result;
  }

  /**
   * The catalog, or with `visible` only the repositories it accepts: read in batches until the page is full,
   * so pages still hold `limit` entries and `more` is exact (the page ends before the next visible one).
   */
  async repositories(page: Page, visible?: (repository: string) => boolean): Promise<PageResult> {
    if (!visible) return this.metadata.listRepositories(page);
    const items: string[] = [];
    let after = page.after;
    for (;;) {
      const batch = await this.metadata.listRepositories({ after, limit: FILTERED_BATCH });
      for (const repository of batch.items) {
        if (!visible(repository)) continue;
        if (items.length === page.limit) return { items, more: true };
        items.push(repository);
      }
      if (!batch.more || batch.items.length === 0) return { items, more: false };
      after = batch.items[batch.items.length - 1];
    }
  }
}
