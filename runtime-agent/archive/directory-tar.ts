import { createReadStream, lstatSync, readFileSync, type Stats } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar, { type Header, type Pack } from 'tar-stream';

/**
 * Walking a directory tree and writing it as a tar, for everything that archives a directory: a build step's
 * layer (the overlay's upper directory), a build context the CLI sends, and `cp`'s archives. Each caller
 * decides what an entry becomes (its header, or nothing); the walk and the packing are the same.
 *
 * Small files are one read each (not an open, reads and a close), read ahead while earlier entries are
 * written, and a directory's entries are stat'ed at once (walkTree): on a tree of thousands of small files the
 * time goes to round trips to the file system's thread pool, not to bytes.
 */

export interface TreeEntry {
  /** Relative to the walk's root, `/`-separated. */
  relative: string;
  hostPath: string;
  stats: Stats;
}

export interface WalkRules {
  /** Whether the entry is yielded. */
  include(relative: string, stats: Stats): boolean;
  /** Whether a directory's entries are walked (a directory left out may still hold entries that are not). */
  descend(relative: string, stats: Stats, included: boolean): boolean;
}

export const EVERY_ENTRY: WalkRules = { include: () => true, descend: () => true };

/** A header and, for a regular file, where its content is read from. */
export interface TarItem {
  header: Partial<Header> & { name: string };
  /** The host file of a `file` entry with a size; undefined for every other entry. */
  contentPath: string | undefined;
}

/** Files up to this size are read whole, ahead of their turn; larger ones stream when their entry is written. */
export const READ_AHEAD_MAX_FILE = 256 * 1024;
/**
 * Files up to this size are read synchronously: from the page cache that is one call of some microseconds,
 * where the promise API makes four thread-pool round trips (open, stat, read, close) that cost about five
 * times the CPU on a tree of small files. The event loop waits at most one such read at a time.
 */
export const SYNC_READ_MAX_FILE = 64 * 1024;

/** A small file's content (SYNC_READ_MAX_FILE), read synchronously; any other read through the thread pool. */
export async function readWholeFile(hostPath: string, size: number): Promise<Buffer> {
  return size <= SYNC_READ_MAX_FILE ? readFileSync(hostPath) : readFile(hostPath);
}
/** Entries whose stats or small contents are read ahead: enough to keep the thread pool busy, bounded in memory. */
export const READ_AHEAD = 32;

/**
 * Every entry under `root` the rules let through, depth first in name order (parents before children). A
 * directory's entries are stat'ed synchronously, one directory at a time: an lstat of a cached inode takes
 * microseconds, a round trip to the thread pool far longer (a nothing-changed rebuild stats its whole
 * context), and the event loop is given back between directories.
 */
export async function* walkTree(root: string, rules: WalkRules, relative = ''): AsyncGenerator<TreeEntry> {
  const names = (await readdir(path.join(root, relative))).sort();
  const children = names.map((name) => (relative === '' ? name : `${relative}/${name}`));
  const stats = children.map((child) => lstatSync(path.join(root, child)));
  for (let index = 0; index < children.length; index++) {
    const child = children[index] as string;
    const childStats = stats[index] as Stats;
    const included = rules.include(child, childStats);
    if (included) yield { relative: child, hostPath: path.join(root, child), stats: childStats };
    if (childStats.isDirectory() && rules.descend(child, childStats, included)) yield* walkTree(root, rules, child);
  }
}

/**
 * `task` of each item, at most `window` started ahead of the one being consumed, the results in the items'
 * order. A failure surfaces when its turn comes.
 */
export async function* mapAhead<T, R>(
  items: Iterable<T> | AsyncIterable<T>,
  window: number,
  task: (item: T) => Promise<R>,
): AsyncGenerator<R> {
  const pending: Array<Promise<R>> = [];
  for await (const item of items) {
    const started = task(item);
    // Handled when consumed; this only keeps a failure ahead of its turn from counting as unhandled.
    started.catch(() => undefined);
    pending.push(started);
    if (pending.length > window) yield await (pending.shift() as Promise<R>);
  }
  while (pending.length > 0) yield await (pending.shift() as Promise<R>);
}

/**
 * The items as a tar stream, small files' contents read ahead. The packer's 512-byte headers and small bodies
 * leave in chunks of about OUTPUT_CHUNK: each chunk costs every stage after it (digests, gzip's thread-pool
 * job) the same whatever its size.
 */
export function packTar(items: AsyncIterable<TarItem>): Readable {
  const pack = tar.pack();
  void (async () => {
    for await (const { item, content } of mapAhead(items, READ_AHEAD, readSmallContent)) await addItem(pack, item, content);
    pack.finalize();
  })().catch((error: Error) => pack.destroy(error));
  return Readable.from(coalesce(pack, OUTPUT_CHUNK));
}

const OUTPUT_CHUNK = 64 * 1024;

async function* coalesce(source: AsyncIterable<unknown>, size: number): AsyncGenerator<Buffer> {
  let parts: Buffer[] = [];
  let length = 0;
  for await (const chunk of source as AsyncIterable<Buffer>) {
    parts.push(chunk);
    length += chunk.length;
    if (length < size) continue;
    yield Buffer.concat(parts, length);
    parts = [];
    length = 0;
  }
  if (length > 0) yield Buffer.concat(parts, length);
}

async function readSmallContent(item: TarItem): Promise<{ item: TarItem; content: Buffer | undefined }> {
  const small = item.contentPath !== undefined && (item.header.size ?? 0) <= READ_AHEAD_MAX_FILE;
  return { item, content: small ? await readWholeFile(item.contentPath as string, item.header.size ?? 0) : undefined };
}

async function addItem(pack: Pack, { header, contentPath }: TarItem, content: Buffer | undefined): Promise<void> {
  if (content !== undefined) {
    // A file that changed size since its stat would make a corrupt tar: its header says what is written.
    if (content.length !== header.size) throw new Error(`${contentPath} changed while it was archived`);
    return new Promise((resolve, reject) => pack.entry(header, content, (error) => (error ? reject(error) : resolve())));
  }
  if (contentPath !== undefined) return pipeline(createReadStream(contentPath), pack.entry(header));
  // An empty `file` entry is given its empty body, or tar-stream waits for one.
  const body = header.type === 'file' || header.type === undefined ? Buffer.alloc(0) : undefined;
  return new Promise((resolve, reject) => {
    const done = (error?: Error | null) => (error ? reject(error) : resolve());
    if (body) pack.entry(header, body, done);
    else pack.entry(header, done);
  });
}
