/**
 * The bytes of small blobs (configs, signatures, SBOM fragments) kept in memory, least recently used evicted
 * first. Content addressed by digest never changes, so an entry cannot be stale; a blob deleted by garbage
 * collection is never served from here because the blob service asks only after the metadata lookup found
 * the blob in the repository and not being deleted.
 */
export class SmallBlobCache {
  // A Map iterates in insertion order: re-inserting on each hit keeps the least recently used first.
  private readonly entries = new Map<string, Buffer>();
  private heldBytes = 0;

  constructor(
    private readonly maxBlobBytes: number,
    private readonly maxTotalBytes: number,
  ) {}

  /** Whether a blob of this size may be kept at all. */
  accepts(size: number): boolean {
    return size <= this.maxBlobBytes && size <= this.maxTotalBytes;
  }

  get(digest: string): Buffer | undefined {
    const bytes = this.entries.get(digest);
    if (bytes === undefined) return undefined;
    this.entries.delete(digest);
    this.entries.set(digest, bytes);
    return bytes;
  }

  put(digest: string, bytes: Buffer): void {
    if (!this.accepts(bytes.length) || this.entries.has(digest)) return;
    this.entries.set(digest, bytes);
    this.heldBytes += bytes.length;
    for (const [oldest, evicted] of this.entries) {
      if (this.heldBytes <= this.maxTotalBytes) break;
      this.entries.delete(oldest);
      this.heldBytes -= evicted.length;
    }
  }

  /** The bytes held, never more than maxTotalBytes. */
  get totalBytes(): number {
    return this.heldBytes;
  }

  has(digest: string): boolean {
    return this.entries.has(digest);
  }
}
