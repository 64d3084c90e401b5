import type { Command } from 'commander';

/**
 * The admin API's client for the `berth` subcommands (deploy, build): registry URL and admin credentials from
 * the options or the environment, one-line errors, exit codes.
 */

interface ApiOptions {
  registry: string;
}

/** A refusal the user can act on: printed as one message, exit code 1 (2 for a bad file or usage). */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

export class AdminClient {
  private readonly base: string;
  private readonly authorization: string | undefined;

  constructor(registry: string) {
    this.base = `${registry.replace(/\/+$/, '')}/admin/v1/`;
    const user = process.env.BERTH_ADMIN_USER;
    this.authorization = user ? `Basic ${Buffer.from(`${user}:${process.env.BERTH_ADMIN_PASSWORD ?? ''}`).toString('base64')}` : undefined;
  }

  async call(method: string, path: string, body?: unknown): Promise<unknown> {
    const response = await this.request(method, path, body);
    const text = await response.text();
    return text ? (JSON.parse(text) as unknown) : undefined;
  }

  /** A GET whose answer is streamed (logs): its body, once the status says it is not an error. */
  async stream(path: string): Promise<ReadableStream<Uint8Array>> {
    const response = await this.request('GET', path);
    if (!response.body) throw new CliError(`the registry sent no body for ${path}`);
    return response.body;
  }

  private async request(method: string, path: string, body?: unknown): Promise<Response> {
    const headers: Record<string, string> = {};
    if (this.authorization) headers.Authorization = this.authorization;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const response = await fetch(this.base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) }).catch(
      (error: Error) => {
        throw new CliError(`cannot reach the registry at ${this.base}: ${(error.cause as Error | undefined)?.message ?? error.message}`);
      },
    );
    if (!response.ok) {
      const text = await response.text();
      const parsed = (() => {
        try {
          return JSON.parse(text) as { errors?: Array<{ message: string }> };
        } catch {
          return undefined;
        }
      })();
      throw new CliError(parsed?.errors?.[0]?.message ?? `HTTP ${response.status}`);
    }
    return response;
  }
}

export function withApi(command: Command): Command {
  return command.option(
    '--registry <url>',
    'the registry (also BERTH_REGISTRY; admin credentials from BERTH_ADMIN_USER and BERTH_ADMIN_PASSWORD)',
  );
}

/** Wraps an action: the admin client from the options, one-line errors, exit codes. */
export function run<Args extends unknown[]>(action: (api: AdminClient, ...args: Args) => Promise<void>) {
  return async (...args: unknown[]): Promise<void> => {
    const command = args[args.length - 1] as Command;
    const options = command.opts<Partial<ApiOptions>>();
    try {
      await action(
        new AdminClient(options.registry ?? process.env.BERTH_REGISTRY ?? 'http://127.0.0.1:5000'),
        ...(args.slice(0, -1) as Args),
      );
    } catch (error) {
      process.stderr.write(`berth: ${(error as Error).message}\n`);
      process.exitCode = error instanceof CliError ? error.exitCode : 1;
    }
  };
}

export function print(value: unknown): void {
  if (value !== undefined) process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export function count(value: string): number {
  const number = Number(value);
  if (!Number.isInteger(number) || number < 0) throw new CliError(`not a whole number: ${value}`, 2);
  return number;
}

export const enc = encodeURIComponent;
