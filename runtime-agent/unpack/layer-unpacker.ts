import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ContentVerificationError, DigestingStream, parseDigest } from '../../oci/digest.js';
import { layerCompression } from '../../oci/media-types.js';
import { compressionGuard, decompressor, LayerFormatError } from './decompression.js';
import { applyLayerTar, type ApplyOptions, type WrittenFiles } from './layer-applier.js';

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
export async function unpackLayer(
  layer: LayerToUnpack,
  directory: string,
  options: ApplyOptions & { onProgress?: (compressedBytes: number) => void },
  files: WrittenFiles,
): Promise<{ size: number }> {
  const compression = layerCompression(layer.mediaType);
  const diffIdAlgorithm = parseDigest(layer.diffId).algorithm;
  const uncompressed = DigestingStream.fresh(diffIdAlgorithm);
  const feeding = pipeline(
    layer.blob,
    progress(options.onProgress),
    compressionGuard(compression, `layer ${layer.digest}`),
    decompressor(compression),
    uncompressed,
  );
  const [fed, applied] = await Promise.allSettled([feeding, applyLayerTar(uncompressed, directory, options, files)]);
  // A feed that failed on its own (download, decompression) is the cause; a premature close is the applier's doing.
  if (fed.status === 'rejected' && (fed.reason as NodeJS.ErrnoException).code !== 'ERR_STREAM_PREMATURE_CLOSE') throw fed.reason;
  if (applied.status === 'rejected') throw inLayer(layer.digest, applied.reason);
  if (fed.status === 'rejected') throw fed.reason;
  const diffId = uncompressed.digest(diffIdAlgorithm);
  if (diffId !== layer.diffId) {
    throw new ContentVerificationError(`layer ${layer.digest} unpacks to DiffID ${diffId}, the image config says ${layer.diffId}`);
  }
  return { size: uncompressed.bytes };
}

/** Entry errors name the entry; the pull's message must also name the layer. */
function inLayer(digest: string, error: unknown): unknown {
  if (error instanceof LayerFormatError && !error.message.startsWith('layer '))
    return new LayerFormatError(`layer ${digest}: ${error.message}`);
  return error;
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
