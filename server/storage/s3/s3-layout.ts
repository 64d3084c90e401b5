/**
 * Where the S3 store keeps things, under the configured prefix:
 * - `blobs/<algorithm>/<first two hex>/<hex>`: finished blobs, as on the filesystem;
 * - `_uploads/<upload id>/<n>`: segment n of an upload in progress, bytes [n × partSize, (n + 1) × partSize).
 *   Every segment but the last holds exactly partSize bytes; the last holds the rest.
 */
export interface Segment {
  key: string;
  /** Bytes of the upload this segment holds (the object may hold more, left by a failed write). */
  length: number;
}

export class S3Layout {
  private readonly root: string;

  constructor(prefix: string) {
    this.root = prefix === '' ? '' : `${prefix}/`;
  }

  blobKey(digest: string): string {
    const [algorithm, hex] = digest.split(':') as [string, string];
    return `${this.root}blobs/${algorithm}/${hex.slice(0, 2)}/${hex}`;
  }

  blobsPrefix(): string {
    return `${this.root}blobs/`;
  }

  /** The digest a blob key stands for, or undefined for a key outside the blob layout. */
  digestOf(key: string): string | undefined {
    const match = /^([a-z0-9]+)\/([0-9a-f]{2})\/([0-9a-f]+)$/.exec(key.slice(this.blobsPrefix().length));
    return key.startsWith(this.blobsPrefix()) && match && match[3]!.startsWith(match[2]!) ? `${match[1]}:${match[3]}` : undefined;
  }

  /** Where every upload's segments are kept. */
  uploadsPrefix(): string {
    return `${this.root}_uploads/`;
  }

  uploadPrefix(uploadId: string): string {
    return `${this.uploadsPrefix()}${uploadId}/`;
  }

  segmentKey(uploadId: string, index: number): string {
    return `${this.uploadPrefix(uploadId)}${index}`;
  }

  /** The segments holding the first `size` bytes of an upload. */
  segments(uploadId: string, size: number, partSize: number): Segment[] {
    const count = Math.ceil(size / partSize);
    return Array.from({ length: count }, (_unused, index) => ({
      key: this.segmentKey(uploadId, index),
      length: Math.min(partSize, size - index * partSize),
    }));
  }
}
