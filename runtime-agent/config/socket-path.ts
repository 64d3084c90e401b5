import path from 'node:path';

/** Where the daemon keeps its state and listens: what every CLI command needs, without the daemon's config. */

export const DEFAULT_DATA_DIR = '/var/lib/berth-agent';

export interface LocationFlags {
  dataDir?: string;
  socket?: string;
}

export function agentDataDir(flags: LocationFlags, env: NodeJS.ProcessEnv = process.env): string {
  return path.resolve(flags.dataDir || env.BERTH_AGENT_DATA_DIR || DEFAULT_DATA_DIR);
}

/** `--socket`, else BERTH_AGENT_SOCKET, else `<data dir>/agent.sock`. */
export function agentSocketPath(flags: LocationFlags, env: NodeJS.ProcessEnv = process.env): string {
  return path.resolve(flags.socket || env.BERTH_AGENT_SOCKET || path.join(agentDataDir(flags, env), 'agent.sock'));
}
