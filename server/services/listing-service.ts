import { RegistryError } from '../errors.js';
import type { MetadataStore, Page, PageResult } from '../metadata/metadata-store.js';

/** Tag and repository listings, served from the metadata indexes at O(page) cost. */
export class ListingService {
  constructor(private readonly metadata: MetadataStore) {}

  async tags(repository: string, page: Page): Promise<PageResult> {
    const result = await this.metadata.listTags(repository, page);
    if (!result) throw new RegistryError('NAME_UNKNOWN', 404, undefined, { detail: { name: repository } });
    return result;
  }

  repositories(page: Page): Promise<PageResult> {
    return this.metadata.listRepositories(page);
  }
}
