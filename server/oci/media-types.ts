export { MediaType, IMAGE_MANIFEST_TYPES, INDEX_TYPES, baseMediaType } from '../../oci/media-types.js';
