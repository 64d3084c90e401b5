/**
 * The daemon API's paths and header names, without the zod schemas of api.ts and verbs-api.ts (which re-export
 * them): what the CLI needs at run time, so a `run` does not load zod at its start.
 */

export const ApiPath = {
  ping: '/v1/ping',
  images: '/v1/images',
  pull: '/v1/images/pull',
  prune: '/v1/prune',
  containers: '/v1/containers',
  auth: '/v1/auth',
  volumes: '/v1/volumes',
  events: '/v1/events',
  build: '/v1/build',
} as const;

export const VerbPath = {
  tag: '/v1/images/tag',
  push: '/v1/images/push',
  save: '/v1/images/save',
  load: '/v1/images/load',
  imageInspect: '/v1/images/inspect',
  history: '/v1/images/history',
  systemDf: '/v1/system/df',
  systemPrune: '/v1/system/prune',
} as const;

/** Per container, under `/v1/containers/{id}`. */
export const ContainerVerb = {
  archive: 'archive',
  stats: 'stats',
  top: 'top',
  rename: 'rename',
  pause: 'pause',
  unpause: 'unpause',
} as const;

/** The header of a `cp` source's archive that describes the source (PathStat). */
export const PATH_STAT_HEADER = 'x-berth-path-stat';
