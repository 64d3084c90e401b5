import path from 'node:path';
import { z } from 'zod';
import { hostPlatform, parsePlatform, type Platform } from './platform.js';

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
}

export const DEFAULT_DATA_DIR = '/var/lib/berth-agent';

/** Flags as commander hands them over; each may be absent. */
export interface ConfigFlags {
  dataDir?: string;
  socket?: string;
  insecureRegistry?: string[];
  maxConcurrentDownloads?: string;
  stallTimeout?: string;
  keepSetid?: boolean;
  platform?: string;
}

const schema = z.object({
  dataDir: z.string().min(1),
  socketPath: z.string().min(1).optional(),
  insecureRegistries: z.array(z.string().min(1)),
  maxConcurrentDownloads: z.coerce.number().int().min(1).max(32),
  stallTimeoutSeconds: z.coerce.number().positive(),
  keepSetid: z.boolean(),
  platform: z.string().optional(),
});

export function resolveConfig(flags: ConfigFlags, env: NodeJS.ProcessEnv = process.env): AgentConfig {
  const result = schema.safeParse({
    dataDir: flags.dataDir ?? env.BERTH_AGENT_DATA_DIR ?? DEFAULT_DATA_DIR,
    socketPath: flags.socket ?? env.BERTH_AGENT_SOCKET,
    insecureRegistries: flags.insecureRegistry ?? splitList(env.BERTH_AGENT_INSECURE_REGISTRIES),
    maxConcurrentDownloads: flags.maxConcurrentDownloads ?? env.BERTH_AGENT_MAX_CONCURRENT_DOWNLOADS ?? 3,
    stallTimeoutSeconds: flags.stallTimeout ?? env.BERTH_AGENT_STALL_TIMEOUT ?? 30,
    keepSetid: flags.keepSetid ?? env.BERTH_AGENT_KEEP_SETID === 'true',
    platform: flags.platform ?? env.BERTH_AGENT_PLATFORM,
  });
  if (!result.success) {
    throw new Error(`invalid configuration: ${result.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; ')}`);
  }
  const config = result.data;
  const dataDir = path.resolve(config.dataDir);
  return {
    dataDir,
    socketPath: path.resolve(config.socketPath ?? path.join(dataDir, 'agent.sock')),
    insecureRegistries: config.insecureRegistries,
    maxConcurrentDownloads: config.maxConcurrentDownloads,
    stallTimeoutSeconds: config.stallTimeoutSeconds,
    keepSetid: config.keepSetid,
    platform: config.platform ? parsePlatform(config.platform) : hostPlatform(),
  };
}

function splitList(value: string | undefined): string[] {
  return (value ?? '').split(',').map((item) => item.trim()).filter(Boolean);
}
