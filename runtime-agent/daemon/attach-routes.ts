import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { CodedError } from '../../platform/errors.js';
import { rawErrorResponse } from '../../platform/raw-error-response.js';
import type { Logger } from '../../platform/logger.js';
import { ApiPath, execRequestSchema } from '../api.js';
import { relayPipedExec } from '../container/attach/piped-exec.js';
import { TerminalHub } from '../container/attach/terminal-hub.js';
import { terminalSize } from '../container/attach/terminal-frames.js';
import type { ContainerManager } from '../container/container-manager.js';
import { AgentErrors } from '../errors.js';
import { DEFAULT_TERMINAL_SIZE } from '../runtime/pty-process.js';
import { asCodedError, parseJsonRequest } from './http-api.js';

/**
 * Terminals over the daemon's API, as docker hijacks its attach and exec connections: the client sends
 * `POST` with `Connection: Upgrade` and `Upgrade: tcp`, the daemon answers `101` and from then on the
 * connection carries terminal frames (terminal-frames.ts) both ways.
 *
 * - `POST /v1/containers/{id}/attach[?start=true]`: the container's terminal, relayed from its shim (which
 *   holds it, so this works after a daemon restart too); `start` starts it first (`run -t`, `start -a`).
 * - `POST /v1/containers/{id}/exec?request=<ExecRequest JSON>&interactive=true&columns=C&rows=R`: a new
 *   process on a terminal of its own; its exit code is the stream's last frame.
 * - `POST /v1/containers/{id}/exec?request=<ExecRequest JSON>&tty=false`: a new process with pipes (`exec -i`):
 *   the stream carries its stdin, the end of it, its stdout and stderr, and its exit code.
 */

type UpgradeHandler = (manager: ContainerManager, client: Duplex, url: URL, id: string) => Promise<void>;

const UPGRADES: { pattern: RegExp; handle: UpgradeHandler }[] = [
  { pattern: new RegExp(`^${ApiPath.containers}/(?<id>[^/]+)/attach$`), handle: attachTerminal },
  { pattern: new RegExp(`^${ApiPath.containers}/(?<id>[^/]+)/exec$`), handle: execAttached },
];

/** Exec output kept until the client has taken the connection over: it is there from the start. */
const EXEC_BACKLOG_BYTES = 64 * 1024;

/**
 * `accept` is the server's `upgrade` listener; `closeAll` drops every terminal connection (the HTTP server
 * no longer counts them once upgraded, and would wait for them at shutdown).
 */
export function terminalUpgrades(manager: ContainerManager, logger: Logger) {
  const open = new Set<Duplex>();
  const accept = (request: IncomingMessage, client: Duplex, head: Buffer): void => {
    open.add(client);
    client.once('close', () => open.delete(client));
    client.on('error', () => client.destroy());
    if (head.length > 0) client.unshift(head);
    const url = new URL(request.url ?? '/', 'http://agent');
    const found = UPGRADES.map((upgrade) => ({ upgrade, match: upgrade.pattern.exec(url.pathname) })).find(({ match }) => match);
    const refuse = (error: CodedError) => {
      if (error.status >= 500) logger.error({ err: error }, 'terminal request failed');
      if (!client.destroyed) client.end(rawErrorResponse(error));
    };
    if (!found || request.method !== 'POST' || request.headers.upgrade?.toLowerCase() !== 'tcp') {
      refuse(new CodedError(AgentErrors.ROUTE_UNKNOWN, `no route ${request.method} ${url.pathname} with Upgrade: tcp`));
      return;
    }
    const id = decodeURIComponent(found.match?.groups?.id ?? '');
    found.upgrade.handle(manager, client, url, id).catch((error: unknown) => refuse(asCodedError(error)));
  };
  const closeAll = () => open.forEach((client) => client.destroy());
  return { accept, closeAll };
}

async function attachTerminal(manager: ContainerManager, client: Duplex, url: URL, id: string): Promise<void> {
  const terminal = url.searchParams.get('start') === 'true' ? await manager.startAttached(id) : await manager.terminal(id);
  terminal.on('error', () => client.destroy());
  acceptUpgrade(client);
  client.pipe(terminal);
  terminal.pipe(client);
  client.once('close', () => terminal.destroy());
  // Ended, not destroyed: the last frames (the exit code) may still be on their way to a slow client.
  terminal.once('close', () => client.end());
}

function execAttached(manager: ContainerManager, client: Duplex, url: URL, id: string): Promise<void> {
  return url.searchParams.get('tty') === 'false' ? execWithPipes(manager, client, url, id) : execOnTerminal(manager, client, url, id);
}

async function execWithPipes(manager: ContainerManager, client: Duplex, url: URL, id: string): Promise<void> {
  const request = parseJsonRequest(url.searchParams.get('request') ?? '', execRequestSchema, 'the request query parameter');
  const child = await manager.exec(id, { command: request.command, env: request.env ?? [], user: request.user, workdir: request.workdir });
  acceptUpgrade(client);
  await relayPipedExec(child, client);
}

async function execOnTerminal(manager: ContainerManager, client: Duplex, url: URL, id: string): Promise<void> {
  const request = parseJsonRequest(url.searchParams.get('request') ?? '', execRequestSchema, 'the request query parameter');
  const size = terminalSize(Number(url.searchParams.get('columns')), Number(url.searchParams.get('rows'))) ?? DEFAULT_TERMINAL_SIZE;
  const terminal = await manager.execOnTerminal(
    id,
    { command: request.command, env: request.env ?? [], user: request.user, workdir: request.workdir },
    size,
  );
  const hub = new TerminalHub(terminal, { acceptInput: url.searchParams.get('interactive') === 'true', backlogBytes: EXEC_BACKLOG_BYTES });
  acceptUpgrade(client);
  hub.add(client);
  hub.end(await terminal.exited);
}

function acceptUpgrade(client: Duplex): void {
  client.write('HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n');
}
