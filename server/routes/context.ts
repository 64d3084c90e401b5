import type Router from '@koa/router';
import type { AccessGuard } from '../auth/access-guard.js';
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
  /** The access each route needs (everything is open when auth is off). */
  access: AccessGuard;
}

export type RegistryRouter = Router;
