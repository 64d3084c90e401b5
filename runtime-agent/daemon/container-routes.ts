import type { ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import {
  ApiPath,
  createRequestSchema,
  execRequestSchema,
  type ContainerSummary,
  type ExecEvent,
  type LogLine,
  type RunExit,
} from '../api.js';
import type { ContainerManager } from '../container/container-manager.js';
import type { ContainerRecord } from '../container/container-record.js';
import { readLogs } from '../container/logs/log-reader.js';
import { parseSignal } from '../container/run-options.js';
import { exitCodeOf } from '../../platform/process-exit.js';
import { CodedError } from '../../platform/errors.js';
import { AgentErrors } from '../errors.js';
import { ndjson, readRequest, route, sendJson, type Route } from './http-api.js';
import { inspectResult } from './inspect-result.js';

const CONTAINER = `${ApiPath.containers}/:id`;

export function containerRoutes(manager: ContainerManager): Route[] {
  return [
    route('GET', ApiPath.containers, async ({ response, url }) => {
      sendJson(response, 200, manager.list(url.searchParams.get('all') === 'true').map(summarize));
    }),
    route('POST', ApiPath.containers, async ({ request, response }) => {
      const body = await readRequest(request, createRequestSchema);
      const record = await manager.create(body, body.autoRemove === true);
      sendJson(response, 201, { id: record.id, name: record.name });
    }),
    route('GET', CONTAINER, async ({ response, params }) => sendJson(response, 200, inspectResult(manager.get(id(params))))),
    route('POST', `${CONTAINER}/start`, async ({ response, params, url }) => {
      if (url.searchParams.get('attach') === 'true') await sendRunOutput(manager, id(params), response);
      else sendJson(response, 200, summarize(await manager.start(id(params))));
    }),
    route('POST', `${CONTAINER}/stop`, async ({ response, params, url }) => {
      const timeout = url.searchParams.get('t');
      sendJson(response, 200, summarize(await manager.stop(id(params), timeout === null ? undefined : nonNegative(timeout, 't'))));
    }),
    route('POST', `${CONTAINER}/kill`, async ({ response, params, url }) => {
      sendJson(response, 200, summarize(await manager.kill(id(params), parseSignal(url.searchParams.get('signal') ?? 'KILL'))));
    }),
    route('POST', `${CONTAINER}/wait`, async ({ response, params }) =>
      sendJson(response, 200, { exitCode: await manager.wait(id(params)) }),
    ),
    route('DELETE', CONTAINER, async ({ response, params, url }) => {
      sendJson(response, 200, summarize(await manager.remove(id(params), url.searchParams.get('force') === 'true')));
    }),
    route('GET', `${CONTAINER}/logs`, async ({ request, response, params, url }) => {
      const container = manager.get(id(params));
      const follow = url.searchParams.get('follow') === 'true';
      const tail = url.searchParams.get('tail');
      const since = url.searchParams.get('since');
      const stop = new AbortController();
      request.once('close', () => stop.abort());
      const send = ndjson(response);
      const entries = readLogs(manager.logDirectory(container.id), {
        tail: tail === null || tail === 'all' ? undefined : nonNegative(tail, 'tail'),
        follow,
        ...(since ? { since: timestamp(since) } : {}),
        signal: stop.signal,
        stopWhen: manager.runEnded(container.id),
      });
      for await (const entry of entries) send(entry satisfies LogLine);
      response.end();
    }),
    route('POST', `${CONTAINER}/stdin`, async ({ request, response, params }) => {
      const stdin = await manager.stdin(id(params));
      // A client that goes away ends the stdin like one that finishes: the process reads EOF.
      await pipeline(request, stdin).catch(() => stdin.end());
      sendJson(response, 200, {});
    }),
    route('POST', `${CONTAINER}/exec`, async ({ request, response, params }) => {
      const body = await readRequest(request, execRequestSchema);
      const child = await manager.exec(id(params), { command: body.command, env: body.env ?? [], user: body.user, workdir: body.workdir });
      const send = ndjson(response);
      child.stdin.end();
      const output = (stream: 'stdout' | 'stderr') => (data: Buffer) =>
        send({ type: 'output', stream, data: data.toString('base64') } satisfies ExecEvent);
      child.stdout.on('data', output('stdout'));
      child.stderr.on('data', output('stderr'));
      const exitCode = await new Promise<number>((resolve) => child.once('close', (code, signal) => resolve(exitCodeOf(code, signal))));
      send({ type: 'exit', exitCode } satisfies ExecEvent);
      response.end();
    }),
  ];
}

/**
 * `start?attach=true` (an attached `run`): the run's log lines as `logs -f` sends them, then its exit code,
 * in the answer to the start itself: no second request before the first output, none for the exit. A `--rm`
 * container is removed by then (the daemon removes it once its output is read), so a `run --rm` that has its
 * exit code has nothing left to do.
 */
async function sendRunOutput(manager: ContainerManager, container: string, response: ServerResponse): Promise<void> {
  const { exited, send } = await manager.whileReadingOutput(container, async () => {
    const record = await manager.start(container);
    // Wrapped: the exit is awaited once the reading has ended, as the removal waits for that.
    const run = { exited: manager.wait(record.id), send: ndjson(response) };
    const stop = new AbortController();
    response.once('close', () => stop.abort());
    // The client attaches a -i run's stdin once it knows the run started: before any output, which may wait for it.
    response.flushHeaders();
    const entries = readLogs(manager.logDirectory(record.id), { follow: true, signal: stop.signal, stopWhen: manager.runEnded(record.id) });
    for await (const entry of entries) run.send(entry satisfies LogLine);
    return run;
  });
  send({ exitCode: await exited } satisfies RunExit);
  response.end();
}

function id(params: Record<string, string>): string {
  return decodeURIComponent(params.id ?? '');
}

function timestamp(value: string): Date {
  const date = new Date(value);
  if (Number.isNaN(date.getTime()))
    throw new CodedError(AgentErrors.REQUEST_INVALID, `since must be a timestamp, not ${JSON.stringify(value)}`);
  return date;
}

function nonNegative(value: string, name: string): number {
  const number = Number(value);
  if (!Number.isInteger(number) || number < 0)
    throw new CodedError(AgentErrors.REQUEST_INVALID, `${name} must be a non-negative integer, not ${JSON.stringify(value)}`);
  return number;
}

function summarize(record: ContainerRecord): ContainerSummary {
  return {
    id: record.id,
    name: record.name,
    image: record.spec.image,
    command: [record.path, ...record.args].join(' '),
    createdAt: record.createdAt,
    status: record.state.status,
    exitCode: record.state.exitCode,
    startedAt: record.state.startedAt,
    finishedAt: record.state.finishedAt,
    restartCount: record.state.restartCount,
    ports: record.network?.ports ?? [],
    health: record.state.health?.Status,
    paused: record.state.paused === true,
  };
}
