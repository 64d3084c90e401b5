import { z } from 'zod';
import { parseByteSize } from './byte-size.js';
import { DEFAULT_BRIDGE_NAME, DEFAULT_SUBNET } from './network/container-network.js';
import { hostPlatform, parsePlatform, type Platform } from '../oci/platform.js';
import { agentDataDir, agentSocketPath, type LocationFlags } from './socket-path.js';

/** The agent's one configuration: defaults, overridden by BERTH_AGENT_* environment variables, overridden by flags. */
export interface AgentConfig {
  /** Images, content and snapshots live here (mode 0700). */
  dataDir: string;
  /** The daemon's API socket (mode 0600); `<dataDir>/agent.sock` unless set. */
  socketPath: string;
  /** Registries (`host[:port]`) reached over plain http besides loopback ones. */
  insecureRegistries: string[];
  /** Layer downloads running at once, over all pulls. */
  maxConcurrentDownloads: number;
  /** Seconds without a byte after which a layer download is aborted and resumed. */
  stallTimeoutSeconds: number;
  /** Keep setuid/setgid bits of unpacked files. */
  keepSetid: boolean;
  /** The platform picked from image indexes. */
  platform: Platform;
  /** The OCI runtime binary (runc or a compatible one). */
  runtime: string;
  /** The bridge containers of `--network bridge` join, and the subnet their addresses come from. */
  bridgeName: string;
  bridgeSubnet: string;
  /** Container logs rotate at this size and keep this many files. */
  logMaxSizeBytes: number;
  logMaxFiles: number;
  /** First restart delay of a restart policy; doubles per restart up to 5 minutes (docker's 100 ms; issue 7 asks 10 s). */
  restartDelayMs: number;
}


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
}

const schema = z.object({
  insecureRegistries: z.array(z.string().min(1)),
  maxConcurrentDownloads: z.coerce.number().int().min(1).max(32),
  stallTimeoutSeconds: z.coerce.number().positive(),
  keepSetid: z.boolean(),
  platform: z.string().optional(),
  runtime: z.string().min(1),
  bridgeName: z.string().regex(/^[a-zA-Z0-9_.-]{1,15}$/, 'a network interface name of at most 15 letters, digits, _ . -'),
  bridgeSubnet: z.string().regex(/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/, 'an IPv4 CIDR such as 10.88.0.0/16'),
  logMaxSizeBytes: z.coerce.number().int().min(4096),
  logMaxFiles: z.coerce.number().int().min(1).max(100),
  restartDelayMs: z.coerce.number().int().min(1),
});

export function resolveConfig(flags: ConfigFlags, env: NodeJS.ProcessEnv = process.env): AgentConfig {
  const result = schema.safeParse({
    insecureRegistries: flags.insecureRegistry ?? splitList(env.BERTH_AGENT_INSECURE_REGISTRIES),
    maxConcurrentDownloads: flags.maxConcurrentDownloads ?? env.BERTH_AGENT_MAX_CONCURRENT_DOWNLOADS ?? 3,
    stallTimeoutSeconds: flags.stallTimeout ?? env.BERTH_AGENT_STALL_TIMEOUT ?? 30,
    keepSetid: flags.keepSetid ?? env.BERTH_AGENT_KEEP_SETID === 'true',
    platform: flags.platform ?? env.BERTH_AGENT_PLATFORM,
    runtime: flags.runtime ?? env.BERTH_AGENT_RUNTIME ?? 'runc',
    bridgeName: flags.bridgeName ?? env.BERTH_AGENT_BRIDGE_NAME ?? DEFAULT_BRIDGE_NAME,
    bridgeSubnet: flags.bridgeSubnet ?? env.BERTH_AGENT_BRIDGE_SUBNET ?? DEFAULT_SUBNET,
    logMaxSizeBytes: parseByteSize(flags.logMaxSize ?? env.BERTH_AGENT_LOG_MAX_SIZE ?? '10m') ?? Number.NaN,
    logMaxFiles: flags.logMaxFiles ?? env.BERTH_AGENT_LOG_MAX_FILES ?? 3,
    restartDelayMs: env.BERTH_AGENT_RESTART_DELAY_MS ?? 10_000,
  });
  if (!result.success) {
    throw new Error(`invalid configuration: ${result.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; ')}`);
  }
  const config = result.data;
  return {
    dataDir: agentDataDir(flags, env),
    socketPath: agentSocketPath(flags, env),
    insecureRegistries: config.insecureRegistries,
    maxConcurrentDownloads: config.maxConcurrentDownloads,
    stallTimeoutSeconds: config.stallTimeoutSeconds,
    keepSetid: config.keepSetid,
    platform: config.platform ? parsePlatform(config.platform) : hostPlatform(),
    runtime: config.runtime,
    bridgeName: config.bridgeName,
    bridgeSubnet: config.bridgeSubnet,
    logMaxSizeBytes: config.logMaxSizeBytes,
    logMaxFiles: config.logMaxFiles,
    restartDelayMs: config.restartDelayMs,
  };
}

function splitList(value: string | undefined): string[] {
  return (value ?? '').split(',').map((item) => item.trim()).filter(Boolean);
}
