/**
 * What the registry and its build workers say to each other over /builds/v1/worker (server/builds/worker-service.ts
 * answers, runtime-agent/worker/worker-client.ts asks): declared once for both sides.
 */

/** How a worker reaches the project's git repository. */
export type GitCredentials =
  { type: 'none' } | { type: 'token'; username: string; token: string } | { type: 'ssh'; privateKey: string; knownHosts: string | null };

/** A claimed job: everything the worker needs to build it; the credentials and secrets leave the registry only here. */
export interface ClaimedBuildJob {
  id: string;
  attempt: number;
  leaseSeconds: number;
  project: string;
  repository: string;
  git: { url: string; credentials: GitCredentials };
  ref: { type: 'branch' | 'tag'; name: string };
  commit: string;
  build: { dockerfile: string; context: string; target: string | null; cache: boolean };
  secrets: Array<{ id: string; value: string }>;
  /** The build cache in the registry; null: the project keeps none. */
  cache: JobCache | null;
}

/**
 * The builder's --cache-from and --cache-to, tags of the project's cache repository: a build imports its ref's
 * cache, then the default branch's (a new branch starts from main's cache, as BuildKit users pass several
 * --cache-from), and exports its ref's.
 */
export interface JobCache {
  repository: string;
  from: string[];
  to: string;
}

/** The image a fetched commit becomes: its tags, build args and labels. */
export interface BuildSpec {
  tags: string[];
  buildArgs: Record<string, string>;
  labels: Record<string, string>;
}

/** How a job ended, as the worker reports it. */
export interface FinishReport {
  outcome: 'succeeded' | 'failed';
  digest: string;
  tags: string[];
  error: string;
  steps: Array<{ name: string; seconds: number; cached: boolean }>;
}
