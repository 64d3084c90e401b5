import type { ImageSummary } from '../api.js';
import { shortDigest } from '../../oci/digest.js';
import { humanAge, humanSize } from './human-format.js';
import { table } from './table.js';

const HEADERS = ['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE'];

/** `docker images` output. */
export function imagesTable(images: readonly ImageSummary[], now = Date.now()): string {
  return table(
    HEADERS,
    images.map((image) => [
      image.repository,
      image.tag ?? '<none>',
      shortDigest(image.id),
      humanAge(image.created, now),
      humanSize(image.size),
    ]),
  );
}
