import { request, type IncomingMessage } from 'node:http';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { AgentDaemon } from './agent-daemon.js';

/** The agent's HTTP API over its socket, for tests that poll faster than the CLI starts or read a stream. */

export function agentSocket(agent: AgentDaemon): string {
  return path.join(agent.dataDir, 'agent.sock');
}

/** One request; the status and the parsed JSON body. */
export function agentApi<T>(agent: AgentDaemon, method: string, apiPath: string): Promise<{ status: number; body: T }> {
  return new Promise((resolve, reject) => {
    const outgoing = request({ socketPath: agentSocket(agent), method, path: apiPath }, (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (text += chunk));
      response.once('end', () => resolve({ status: response.statusCode ?? 0, body: JSON.parse(text) as T }));
    });
    outgoing.once('error', reject);
    outgoing.end();
  });
}

/** A streaming GET: its lines as they come, and a way to hang up. */
export async function agentStream(
  agent: AgentDaemon,
  apiPath: string,
): Promise<{ response: IncomingMessage; lines: AsyncIterator<string>; close(): void }> {
  const response = await new Promise<IncomingMessage>((resolve, reject) => {
    const outgoing = request({ socketPath: agentSocket(agent), method: 'GET', path: apiPath }, resolve);
    outgoing.once('error', reject);
    outgoing.end();
  });
  const lines = createInterface({ input: response, crlfDelay: Infinity })[Symbol.asyncIterator]();
  return { response, lines, close: () => response.destroy() };
}
