import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ContentVerificationError, DigestingStream, parseDigest } from '../../oci/digest.js';
import { layerCompression } from '../../oci/media-types.js';
import { compressionGuard, decompressor } from './decompression.js';
import { applyLayerTar, type ApplyOptions } from './layer-applier.js';

export interface LayerToUnpack {
  /** The compressed blob as stored. */
  blob: Readable;
  digest: string;
  mediaType: string;
  /** The uncompressed tar's digest, from the image config's rootfs.diff_ids. */
  diffId: string;
}

/**
 * Unpacks a layer blob into an empty directory in one streaming pass: compressed bytes are checked against
 * the media type, decompressed, hashed for the DiffID and applied entry by entry. A DiffID mismatch fails
 * the unpack; the caller discards the directory. The compressed bytes are not hashed again: the DiffID comes
 * from the verified config, so it alone proves what was unpacked, a blob damaged at rest included.
 */
export async function unpackLayer(layer: LayerToUnpack, directory: string, options: ApplyOptions & { onProgress?: (compressedBytes: number) => void }): Promise<{ size: number }> {
  const compression = layerCompression(layer.mediaType);
  const diffIdAlgorithm = parseDigest(layer.diffId).algorithm;
  const uncompressed = DigestingStream.fresh(diffIdAlgorithm);
  const feeding = pipeline(layer.blob, progress(options.onProgress), compressionGuard(compression, `layer ${layer.digest}`), decompressor(compression), uncompressed);
  await Promise.all([feeding, applyLayerTar(uncompressed, directory, options)]);
  const diffId = uncompressed.digest(diffIdAlgorithm);
  if (diffId !== layer.diffId) {
    throw new ContentVerificationError(`layer ${layer.digest} unpacks to DiffID ${diffId}, the image config says ${layer.diffId}`);
  }
  return { size: uncompressed.bytes };
}

/** Reports the compressed bytes read so far, for the Extracting progress bar. */
function progress(onProgress: ((compressedBytes: number) => void) | undefined): Transform {
  let bytes = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      bytes += chunk.length;
      onProgress?.(bytes);
      callback(null, chunk);
    },
  });
}
