import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';

/**
 * One way to configure both programs: a YAML file, then environment variables, then command-line flags,
 * validated by a zod schema that holds the defaults. Each program owns an environment prefix and leaves
 * the other's alone, so one host (or one container) can set both: the registry reads `BERTH_*` except
 * `BERTH_AGENT_*`, the agent reads `BERTH_AGENT_*`.
 */
export interface EnvConvention {
  /** Variables starting with this configure the program, e.g. `BERTH_`. */
  prefix: string;
  /** Names the file to load; not itself a key. */
  fileVariable: string;
  /** Prefixes of other programs' variables, ignored here. */
  foreign: readonly string[];
}

export const REGISTRY_ENV: EnvConvention = { prefix: 'BERTH_', fileVariable: 'BERTH_CONFIG', foreign: ['BERTH_AGENT_'] };
export const AGENT_ENV: EnvConvention = { prefix: 'BERTH_AGENT_', fileVariable: 'BERTH_AGENT_CONFIG', foreign: [] };

/** A flag's value keyed by the config path it sets, with the flag as the user typed it, for messages. */
export type FlagValues = Record<string, { flag: string; value: unknown }>;

export interface ConfigSources {
  /** A YAML file; unset: the convention's file variable, else none. */
  file?: string;
  env?: NodeJS.ProcessEnv;
  flags?: FlagValues;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/**
 * Merges the sources (file < env < flags) and validates them. An invalid value is reported with its key and
 * where it was set: `http.port: Too big (set by BERTH_HTTP__PORT)`.
 */
export function loadConfig<S extends z.ZodType>(schema: S, convention: EnvConvention, sources: ConfigSources = {}): z.output<S> {
  const env = sources.env ?? process.env;
  const file = sources.file ?? env[convention.fileVariable];
  const raw: Record<string, unknown> = file ? readYamlFile(file) : {};
  const origins = new Map<string, string>();
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined || !ownsVariable(convention, name)) continue;
    const keyPath = envNameToPath(name.slice(convention.prefix.length));
    setPath(raw, keyPath, parseScalar(value));
    origins.set(keyPath.join('.'), `set by ${name}`);
  }
  for (const [dotted, { flag, value }] of Object.entries(sources.flags ?? {})) {
    if (value === undefined) continue;
    setPath(raw, dotted.split('.'), value);
    origins.set(dotted, `set by ${flag}`);
  }
  const result = schema.safeParse(raw);
  if (result.success) return result.data;
  const lines = result.error.issues.map((issue) => {
    const where = issue.path.join('.') || '(top level)';
    // An unknown key is reported at its parent, naming the key: its origin is the key's own.
    const keyPaths = issue.code === 'unrecognized_keys' ? issue.keys.map((key) => [...issue.path, key]) : [issue.path];
    const named = keyPaths.map((keyPath) => originOf(origins, keyPath.map(String))).filter((origin) => origin !== undefined);
    const origin = named.length > 0 ? named.join(', ') : file ? `in ${file}` : undefined;
    return `  ${where}: ${issue.message}${origin ? ` (${origin})` : ''}`;
  });
  throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
}

/** Whether a variable configures this program (and not another one sharing the same outer prefix). */
export function ownsVariable(convention: EnvConvention, name: string): boolean {
  if (!name.startsWith(convention.prefix) || name === convention.fileVariable) return false;
  return !convention.foreign.some((prefix) => name.startsWith(prefix));
}

// A value set whole (an env var holding a YAML mapping) is the origin of every key inside it.
function originOf(origins: Map<string, string>, keyPath: string[]): string | undefined {
  for (let length = keyPath.length; length > 0; length--) {
    const origin = origins.get(keyPath.slice(0, length).join('.'));
    if (origin) return origin;
  }
  return undefined;
}

function readYamlFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError(`cannot read config file ${file}: ${(error as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = parseYaml(text);
  } catch (error) {
    throw new ConfigError(`config file ${file} is not valid YAML: ${(error as Error).message}`);
  }
  if (parsed === null || parsed === undefined) return {};
  if (typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ConfigError(`config file ${file} must contain a YAML mapping at the top level`);
  }
  return parsed as Record<string, unknown>;
}

/** `HTTP__PORT` is `http.port`; `MANIFEST_MAX_BYTES` within a level is `manifestMaxBytes`. */
export function envNameToPath(name: string): string[] {
  return name.split('__').map((segment) => segment.toLowerCase().replace(/_([a-z0-9])/g, (_match, char: string) => char.toUpperCase()));
}

// Values are YAML scalars, so numbers and booleans arrive typed: BERTH_HTTP__PORT=5001 is the number 5001.
function parseScalar(value: string): unknown {
  try {
    return parseYaml(value) ?? value;
  } catch {
    return value;
  }
}

function setPath(target: Record<string, unknown>, keyPath: string[], value: unknown): void {
  let node = target;
  keyPath.forEach((key, index) => {
    if (index === keyPath.length - 1) {
      node[key] = value;
      return;
    }
    const next = node[key];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) node[key] = {};
    node = node[key] as Record<string, unknown>;
  });
}
