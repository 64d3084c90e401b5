import { hostname } from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { parsePlatform, hostPlatform } from '../../oci/platform.js';
import { AGENT_ENV, loadConfig, type FlagValues } from '../../platform/config.js';
import { parseGoDuration } from '../../platform/go-duration.js';
import { parseByteSize } from '../support/byte-size.js';
import type { GitMirrorLimits } from '../worker/git-mirrors.js';
import { DEFAULT_BRIDGE_NAME, DEFAULT_SUBNET } from '../network/container-network.js';
import { DEFAULT_DATA_DIR, type LocationFlags } from './socket-path.js';

/**
 * The agent's one configuration, loaded by platform/config: an optional YAML file (BERTH_AGENT_CONFIG),
 * overridden by BERTH_AGENT_* variables (BERTH_AGENT_LOG_MAX_SIZE is `logMaxSize`), overridden by flags.
 * Keys are named as the variables and flags are, so the three spell a setting the same way.
 */

/** A comma-separated list from the environment, or a list from YAML or a repeated flag. */
const listSchema = z.preprocess(
  (value) =>
    typeof value === 'string'
      ? value
          .split(',')
          .map((item) => item.trim())
          .filter(Boolean)
      : value,
  z.array(z.string().min(1)),
);

const agentConfigSchema = z
  .object({
    /** Images, content and snapshots live here (mode 0700). */
    dataDir: z.string().min(1).default(DEFAULT_DATA_DIR),
    /** The daemon's API socket (mode 0600); `<dataDir>/agent.sock` unless set. */
    socket: z.string().min(1).optional(),
    /** Registries (`host[:port]`) reached over plain http besides loopback ones. */
    insecureRegistries: listSchema.default([]),
    /** Layer downloads running at once, over all pulls. */
    maxConcurrentDownloads: z.coerce.number().int().min(1).max(32).default(3),
    /** Seconds without a byte after which a layer download is aborted and resumed. */
    stallTimeout: z.coerce.number().positive().default(30),
    /** Keep setuid/setgid bits of unpacked files. */
    keepSetid: z.boolean().default(false),
    /** The platform picked from image indexes (`os/arch[/variant]`); unset: this host's. */
    platform: z.string().optional(),
    /** The OCI runtime binary (runc or a compatible one). */
    runtime: z.string().min(1).default('runc'),
    /** The bridge containers of `--network bridge` join, and the subnet their addresses come from. */
    bridgeName: z
      .string()
      .regex(/^[a-zA-Z0-9_.-]{1,15}$/, 'a network interface name of at most 15 letters, digits, _ . -')
      .default(DEFAULT_BRIDGE_NAME),
    bridgeSubnet: z
      .string()
      .regex(/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/, 'an IPv4 CIDR such as 10.88.0.0/16')
      .default(DEFAULT_SUBNET),
    /** Container logs rotate at this size (`10m`, `1g`, bytes) and keep this many files. */
    logMaxSize: z.union([z.string(), z.number()]).default('10m'),
    logMaxFiles: z.coerce.number().int().min(1).max(100).default(3),
    /** First restart delay of a restart policy; doubles per restart up to 5 minutes (docker's 100 ms; issue 7 asks 10 s). */
    restartDelayMs: z.coerce.number().int().min(1).default(10_000),
    /** A Berth registry to join as a deployment node (`http[s]://host[:port]`), with a join token (`berth node token`). */
    join: z.url({ protocol: /^https?$/, error: 'an http or https URL of the registry, such as http://10.0.0.1:5000' }).optional(),
    token: z.string().min(1).optional(),
    /** The node's labels (`zone=a`), for placement constraints `node.labels.zone == a`. */
    label: listSchema.default([]),
    /** The node's name in the registry; this host's name unless set. */
    nodeName: z
      .string()
      .regex(/^[a-z0-9][a-z0-9.-]{0,62}$/, 'lowercase letters, digits, . and - (at most 63)')
      .optional(),
    /** Where this node's published ports answer; the address of the route to the registry unless set. */
    advertiseAddress: z.ipv4().optional(),
    /** Take build jobs from a registry (`registry`, with a `berth build worker-token` as workerToken). */
    buildWorker: z.boolean().default(false),
    registry: z.string().url('the registry URL, e.g. http://10.0.0.1:5000').optional(),
    workerToken: z.string().min(1).optional(),
    /** This agent's name in the registry's build records; unset: the host name. */
    workerName: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, 'letters, digits, ., _ and -')
      .optional(),
    /** A build worker's git mirrors: one unused this long (a Go duration) is removed, and the least recently used beyond this size. */
    gitMirrorMaxAge: z.string().default('48h'),
    gitMirrorMaxSize: z.union([z.string(), z.number()]).default('2g'),
  })
  .strict()
  .transform((config, context) => {
    const logMaxSizeBytes = parseByteSize(String(config.logMaxSize));
    if (logMaxSizeBytes === undefined || logMaxSizeBytes < 4096) {
      context.addIssue({ code: 'custom', path: ['logMaxSize'], message: 'a size of at least 4096 bytes, such as 10m or 1g' });
      return z.NEVER;
    }
    let platform = hostPlatform();
    try {
      if (config.platform) platform = parsePlatform(config.platform);
    } catch (error) {
      context.addIssue({ code: 'custom', path: ['platform'], message: (error as Error).message });
      return z.NEVER;
    }
    if (config.buildWorker && (config.registry === undefined || config.workerToken === undefined)) {
      context.addIssue({
        code: 'custom',
        path: ['buildWorker'],
        message: '--build-worker needs --registry URL and --worker-token T (berth build worker-token)',
      });
      return z.NEVER;
    }
    const node = nodeConfig(config, context);
    if (node === z.NEVER) return z.NEVER;
    const gitMirrors = gitMirrorLimits(config, context);
    if (gitMirrors === z.NEVER) return z.NEVER;
    const dataDir = path.resolve(config.dataDir);
    return {
      dataDir,
      socketPath: path.resolve(config.socket ?? path.join(dataDir, 'agent.sock')),
      insecureRegistries: config.insecureRegistries,
      maxConcurrentDownloads: config.maxConcurrentDownloads,
      stallTimeoutSeconds: config.stallTimeout,
      keepSetid: config.keepSetid,
      platform,
      runtime: config.runtime,
      bridgeName: config.bridgeName,
      bridgeSubnet: config.bridgeSubnet,
      logMaxSizeBytes,
      logMaxFiles: config.logMaxFiles,
      restartDelayMs: config.restartDelayMs,
      node,
      buildWorker:
        config.buildWorker && config.registry && config.workerToken
          ? { registry: config.registry, token: config.workerToken, name: config.workerName ?? hostname(), gitMirrors }
          : null,
    };
  });

function gitMirrorLimits(
  config: { gitMirrorMaxAge: string; gitMirrorMaxSize: string | number },
  context: z.RefinementCtx,
): GitMirrorLimits | typeof z.NEVER {
  const age = parseGoDuration(config.gitMirrorMaxAge);
  if (!('nanoseconds' in age) || age.nanoseconds <= 0) {
    context.addIssue({ code: 'custom', path: ['gitMirrorMaxAge'], message: 'a positive duration such as 48h or 30m' });
    return z.NEVER;
  }
  const maxBytes = parseByteSize(String(config.gitMirrorMaxSize));
  if (maxBytes === undefined) {
    context.addIssue({ code: 'custom', path: ['gitMirrorMaxSize'], message: 'a size such as 2g or 500m (0 keeps no mirror)' });
    return z.NEVER;
  }
  return { maxAgeMs: age.nanoseconds / 1e6, maxBytes };
}

/** The deployment node settings, when the agent joins a registry. */
export interface NodeConfig {
  joinUrl: string;
  token: string;
  labels: Record<string, string>;
  /** undefined: the host's name. */
  name: string | undefined;
  /** undefined: the local address of the route to the registry. */
  advertiseAddress: string | undefined;
}

function nodeConfig(
  config: { join?: string; token?: string; label: string[]; nodeName?: string; advertiseAddress?: string },
  context: z.RefinementCtx,
): NodeConfig | null | typeof z.NEVER {
  if (config.join === undefined) {
    const stray = (['token', 'nodeName', 'advertiseAddress'] as const).find((key) => config[key] !== undefined);
    if (stray !== undefined || config.label.length > 0) {
      context.addIssue({ code: 'custom', path: [stray ?? 'label'], message: 'only meaningful with --join' });
      return z.NEVER;
    }
    return null;
  }
  if (config.token === undefined) {
    context.addIssue({ code: 'custom', path: ['token'], message: 'a join token (berth node token) is required with --join' });
    return z.NEVER;
  }
  const labels: Record<string, string> = {};
  for (const label of config.label) {
    const match = /^([A-Za-z0-9][A-Za-z0-9._/-]*)=(.*)$/.exec(label);
    if (!match) {
      context.addIssue({
        code: 'custom',
        path: ['label'],
        message: `${JSON.stringify(label)} is not KEY=VALUE (a key of letters, digits, . _ / -)`,
      });
      return z.NEVER;
    }
    labels[match[1]!] = match[2]!;
  }
  return {
    joinUrl: config.join.replace(/\/+$/, ''),
    token: config.token,
    labels,
    name: config.nodeName,
    advertiseAddress: config.advertiseAddress,
  };
}

export type AgentConfig = z.output<typeof agentConfigSchema>;

/** Flags as commander hands them over; each may be absent. */
export interface ConfigFlags extends LocationFlags {
  insecureRegistry?: string[];
  maxConcurrentDownloads?: string;
  stallTimeout?: string;
  keepSetid?: boolean;
  platform?: string;
  runtime?: string;
  bridgeName?: string;
  bridgeSubnet?: string;
  logMaxSize?: string;
  logMaxFiles?: string;
  join?: string;
  token?: string;
  label?: string[];
  nodeName?: string;
  advertiseAddress?: string;
  buildWorker?: boolean;
  registry?: string;
  workerToken?: string;
  workerName?: string;
  gitMirrorMaxAge?: string;
  gitMirrorMaxSize?: string;
}

export function resolveConfig(flags: ConfigFlags, env: NodeJS.ProcessEnv = process.env): AgentConfig {
  return loadConfig(agentConfigSchema, AGENT_ENV, { env, flags: flagValues(flags) });
}

function flagValues(flags: ConfigFlags): FlagValues {
  return {
    dataDir: { flag: '--data-dir', value: flags.dataDir || undefined },
    socket: { flag: '--socket', value: flags.socket || undefined },
    insecureRegistries: { flag: '--insecure-registry', value: flags.insecureRegistry },
    maxConcurrentDownloads: { flag: '--max-concurrent-downloads', value: flags.maxConcurrentDownloads },
    stallTimeout: { flag: '--stall-timeout', value: flags.stallTimeout },
    keepSetid: { flag: '--keep-setid', value: flags.keepSetid },
    platform: { flag: '--platform', value: flags.platform },
    runtime: { flag: '--runtime', value: flags.runtime },
    bridgeName: { flag: '--bridge-name', value: flags.bridgeName },
    bridgeSubnet: { flag: '--bridge-subnet', value: flags.bridgeSubnet },
    logMaxSize: { flag: '--log-max-size', value: flags.logMaxSize },
    logMaxFiles: { flag: '--log-max-files', value: flags.logMaxFiles },
    join: { flag: '--join', value: flags.join },
    token: { flag: '--token', value: flags.token },
    label: { flag: '--label', value: flags.label },
    nodeName: { flag: '--node-name', value: flags.nodeName },
    advertiseAddress: { flag: '--advertise-address', value: flags.advertiseAddress },
    buildWorker: { flag: '--build-worker', value: flags.buildWorker },
    registry: { flag: '--registry', value: flags.registry },
    workerToken: { flag: '--worker-token', value: flags.workerToken },
    workerName: { flag: '--worker-name', value: flags.workerName },
    gitMirrorMaxAge: { flag: '--git-mirror-max-age', value: flags.gitMirrorMaxAge },
    gitMirrorMaxSize: { flag: '--git-mirror-max-size', value: flags.gitMirrorMaxSize },
  };
}
