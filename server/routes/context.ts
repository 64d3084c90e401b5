import type Router from '@koa/router';
import type { Config } from '../config.js';
import type { BlobService } from '../services/blob-service.js';
import type { ListingService } from '../services/listing-service.js';
import type { ManifestService } from '../services/manifest-service.js';
import type { UploadService } from '../services/upload-service.js';

export interface RegistryServices {
  blobs: BlobService;
  uploads: UploadService;
  manifests: ManifestService;
  listings: ListingService;
  config: Config;
}

export type RegistryRouter = Router;
