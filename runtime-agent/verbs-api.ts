import { z } from 'zod';
import type { PullEvent } from './api.js';

/**
 * The daemon API of docker's everyday verbs (tag, push, cp, stats, top, port, rename, pause, save, load,
 * image inspect, history, system df and prune): paths and documents, shared by daemon and CLI. Kept apart
 * from api.ts so the verbs grow without touching the run/pull API.
 */

export { ContainerVerb, PATH_STAT_HEADER, VerbPath } from './api-paths.js';

export const tagRequestSchema = z.object({ source: z.string().min(1), target: z.string().min(1) });
export type TagRequest = z.infer<typeof tagRequestSchema>;

export const pushRequestSchema = z.object({ reference: z.string().min(1) });
export type PushRequest = z.infer<typeof pushRequestSchema>;

/** One line of the push answer (NDJSON): the pull's progress vocabulary, then the pushed manifest. */
export type PushEvent = Exclude<PullEvent, { type: 'done' }> | { type: 'done'; tag: string; digest: string; size: number };

export const renameRequestSchema = z.object({ name: z.string().min(1) });

export const imageListSchema = z.object({ images: z.array(z.string().min(1)).min(1), format: z.enum(['docker', 'oci']) });
export type SaveRequest = z.infer<typeof imageListSchema>;

/** `load`'s answer: docker's lines, `Loaded image: name:tag` or `Loaded image ID: sha256:...`. */
export interface LoadResult {
  loaded: string[];
}

/** `docker image inspect`'s document, the fields the agent knows. */
export interface ImageInspect {
  Id: string;
  RepoTags: string[];
  RepoDigests: string[];
  Created: string;
  Architecture: string;
  Os: string;
  Variant?: string;
  Size: number;
  Config: Record<string, unknown>;
  RootFS: { Type: string; Layers: string[] };
}

/** A line of `history`: one entry of the image config's history, newest first. */
export interface HistoryEntry {
  /** The layer's image id for the newest entry, `<missing>` below it (as docker shows pulled images). */
  id: string;
  created: string | undefined;
  createdBy: string;
  size: number;
  comment: string;
}

/** `docker stats` for one container at one moment; CPU % is computed by the client between two samples. */
export interface StatsSample {
  id: string;
  name: string;
  read: string;
  /** Nanoseconds of CPU the container used, and the host's (all cores) at the same moment. */
  cpuUsageNs: number;
  systemUsageNs: number;
  onlineCpus: number;
  memoryUsage: number;
  memoryLimit: number;
  pids: number;
  netRx: number;
  netTx: number;
  blockRead: number;
  blockWrite: number;
}

/** `top`: ps's header and rows, split in columns. */
export interface TopResult {
  Titles: string[];
  Processes: string[][];
}

/** Stat of the path a `cp` reads or writes in the container (docker's X-Docker-Container-Path-Stat). */
export interface PathStat {
  name: string;
  size: number;
  mode: number;
  isDirectory: boolean;
  /** The symlink's target when the path is one (not followed without -L). */
  linkTarget: string;
}

export interface DiskUsage {
  images: Array<{ id: string; references: string[]; size: number; sharedSize: number; containers: number }>;
  containers: Array<{ id: string; name: string; image: string; status: string; sizeRw: number }>;
  volumes: Array<{ name: string; size: number; links: number }>;
  buildCache: { count: number; size: number };
}

export const systemPruneSchema = z.object({ all: z.boolean(), volumes: z.boolean() });

export interface SystemPruneResult {
  deletedContainers: string[];
  deletedImages: string[];
  deletedVolumes: string[];
  reclaimedBytes: number;
}
