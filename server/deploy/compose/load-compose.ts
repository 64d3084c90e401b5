import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseDocument } from 'yaml';
import { ComposeError, validateCompose } from './compose.js';
import { interpolateTree, InterpolationError, type Variables } from './interpolate.js';
import type { StackSpec } from './stack-spec.js';

/** What the CLI sends to the registry: the document with variables interpolated and env files read in. */
export interface ResolvedCompose {
  document: Record<string, unknown>;
  stack: StackSpec;
}

/**
 * Reads a compose file as docker compose does on the client side: YAML, `${VAR}` interpolation from
 * `variables` (the CLI's environment), then each service's env_file (relative to the file's directory)
 * merged under its environment, and bare `KEY` entries taken from `variables`. The result is validated
 * here too, so a bad file fails before anything is sent.
 */
export async function loadComposeFile(file: string, variables: Variables): Promise<ResolvedCompose> {
  const text = await readFile(file, 'utf8').catch((error: NodeJS.ErrnoException) => {
    throw new ComposeError([{ path: '', message: `cannot read ${file}: ${error.code ?? error.message}` }]);
  });
  const document = await resolveCompose(text, variables, path.dirname(path.resolve(file)));
  return { document, stack: validateCompose(document) };
}

export async function resolveCompose(text: string, variables: Variables, directory: string): Promise<Record<string, unknown>> {
  const parsed = parseDocument(text, { uniqueKeys: true, merge: true });
  if (parsed.errors.length > 0) throw new ComposeError(parsed.errors.map((error) => ({ path: '', message: `YAML: ${error.message}` })));
  const raw: unknown = parsed.toJS();
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw))
    throw new ComposeError([{ path: '', message: 'a compose file is a mapping' }]);
  let document: Record<string, unknown>;
  try {
    document = interpolateTree(raw, variables) as Record<string, unknown>;
  } catch (error) {
    if (error instanceof InterpolationError) throw new ComposeError([{ path: '', message: error.message }]);
    throw error;
  }
  const services = document.services;
  if (services !== null && typeof services === 'object' && !Array.isArray(services)) {
    for (const [name, service] of Object.entries(services as Record<string, unknown>)) {
      if (service !== null && typeof service === 'object' && !Array.isArray(service))
        await resolveEnvironment(service as Record<string, unknown>, `services.${name}`, variables, directory);
    }
  }
  return document;
}

async function resolveEnvironment(service: Record<string, unknown>, at: string, variables: Variables, directory: string): Promise<void> {
  const fromFiles: Record<string, string> = {};
  if (service.env_file !== undefined) {
    for (const [index, entry] of envFileEntries(service.env_file, `${at}.env_file`).entries()) {
      const file = path.resolve(directory, entry.path);
      const text = await readFile(file, 'utf8').catch((error: NodeJS.ErrnoException) => {
        if (error.code === 'ENOENT' && !entry.required) return '';
        throw new ComposeError([{ path: `${at}.env_file[${index}]`, message: `cannot read ${file}: ${error.code ?? error.message}` }]);
      });
      Object.assign(fromFiles, parseEnvFile(text));
    }
    delete service.env_file;
  }
  const declared = service.environment;
  if (declared === undefined && Object.keys(fromFiles).length === 0) return;
  const own = Array.isArray(declared) ? listToMap(declared) : (declared as Record<string, unknown> | null | undefined);
  if (own !== null && own !== undefined && typeof own !== 'object') return;
  const merged: Record<string, unknown> = { ...fromFiles };
  for (const [key, value] of Object.entries(own ?? {})) {
    // A bare `KEY` takes the CLI's value, and is left out when the CLI has none, as with docker compose.
    const resolved = value === null ? variables[key] : value;
    if (resolved === undefined) delete merged[key];
    else merged[key] = resolved;
  }
  service.environment = merged;
}

function envFileEntries(value: unknown, at: string): Array<{ path: string; required: boolean }> {
  const list = Array.isArray(value) ? value : [value];
  return list.map((entry, index) => {
    if (typeof entry === 'string') return { path: entry, required: true };
    if (entry !== null && typeof entry === 'object' && typeof (entry as { path?: unknown }).path === 'string') {
      const required = (entry as { required?: unknown }).required;
      return { path: (entry as { path: string }).path, required: required !== false };
    }
    throw new ComposeError([{ path: `${at}[${index}]`, message: 'an env_file entry is a path or { path, required }' }]);
  });
}

function listToMap(list: unknown[]): Record<string, unknown> {
  return Object.fromEntries(
    list.map((line) => {
      const text = String(line);
      const equals = text.indexOf('=');
      return equals === -1 ? [text, null] : [text.slice(0, equals), text.slice(equals + 1)];
    }),
  );
}

/** `KEY=value` lines; `#` comments, blank lines and `export ` are skipped; matching outer quotes are removed. */
export function parseEnvFile(text: string): Record<string, string> {
  const variables: Record<string, string> = {};
  for (const rawLine of text.split(/\r?\n/)) {
    const line = rawLine.trim().replace(/^export\s+/, '');
    if (line === '' || line.startsWith('#')) continue;
    const equals = line.indexOf('=');
    if (equals === -1) continue;
    const value = line.slice(equals + 1).trim();
    const quoted = /^(["'])(.*)\1$/.exec(value);
    variables[line.slice(0, equals).trim()] = quoted ? quoted[2]! : value.replace(/\s+#.*$/, '');
  }
  return variables;
}
