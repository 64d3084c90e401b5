import type Router from '@koa/router';
import type { Context, Next } from 'koa';
import { z } from 'zod';
import { readJsonBody } from '../auth/small-body.js';
import type { RegistryBuilds } from '../builds/setup.js';
import type { WorkerLease } from '../builds/worker-service.js';
import { createRouter } from '../http/router.js';
import { emptyResponse } from '../http/responses.js';
import { parseBody } from './builds-admin.js';

const BASE = '/builds/v1/worker';

const AGENT = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, 'an agent name is letters, digits, ., _ and -');
const claimBody = z.strictObject({ agent: AGENT, waitSeconds: z.number().int().min(0).max(60).default(0) });
const leaseFields = { agent: AGENT, attempt: z.number().int().min(1) };
const leaseBody = z.strictObject(leaseFields);
const logLines = z.array(z.string().max(64 * 1024)).max(1000);
const logBody = z.strictObject({ ...leaseFields, lines: logLines });
const sourceBody = z.strictObject({
  ...leaseFields,
  commit: z.string().regex(/^[0-9a-f]{40}([0-9a-f]{24})?$/),
  time: z.number().int().min(0),
  message: z.string().max(64 * 1024),
});
const step = z.strictObject({ name: z.string(), seconds: z.number().min(0), cached: z.boolean() });
const finishBody = z.strictObject({
  ...leaseFields,
  outcome: z.enum(['succeeded', 'failed']),
  digest: z.string().default(''),
  tags: z.array(z.string()).default([]),
  error: z
    .string()
    .max(64 * 1024)
    .default(''),
  steps: z.array(step).max(1000).default([]),
  /** The log's last lines; a worker from before they came with the finish sends them in a log call. */
  log: logLines.default([]),
});

/**
 * The API build workers call (`berth-agent daemon --build-worker`), each route behind the worker token the
 * admin issued; every call after the claim names the attempt it holds, and a lost lease is answered 409.
 */
export function buildWorkerRouter({ workers }: RegistryBuilds): Router {
  const router = createRouter();
  const asWorker = async (ctx: Context, next: Next) => {
    ctx.state.worker = await workers.authenticate(ctx.get('Authorization') || undefined);
    await next();
  };
  const lease = (ctx: Context, body: { agent: string; attempt: number }): WorkerLease => ({
    worker: `${body.agent}@${ctx.state.worker as string}`,
    attempt: body.attempt,
  });
  router.post(`${BASE}/claim`, asWorker, async (ctx: Context) => {
    const { agent, waitSeconds } = parseBody(claimBody, await readJsonBody(ctx));
    // The response's close (not the request's, which Node destroys once its body is read) tells of a worker gone.
    const gone = new AbortController();
    ctx.res.once('close', () => gone.abort());
    const job = await workers.claim(ctx.state.worker as string, agent, waitSeconds * 1000, gone.signal);
    ctx.set('Cache-Control', 'no-store');
    if (job) ctx.body = job;
    else emptyResponse(ctx, 204);
  });
  router.post(`${BASE}/jobs/:id/lease`, asWorker, async (ctx: Context) => {
    const body = parseBody(leaseBody, await readJsonBody(ctx));
    ctx.body = { cancel: await workers.renew(ctx.params.id ?? '', lease(ctx, body)) };
  });
  router.post(`${BASE}/jobs/:id/source`, asWorker, async (ctx: Context) => {
    const body = parseBody(sourceBody, await readJsonBody(ctx));
    ctx.body = await workers.source(
      ctx.params.id ?? '',
      lease(ctx, body),
      { sha: body.commit, time: body.time, message: body.message },
      ctx.host,
    );
  });
  router.post(`${BASE}/jobs/:id/push-token`, asWorker, async (ctx: Context) => {
    const body = parseBody(leaseBody, await readJsonBody(ctx));
    ctx.set('Cache-Control', 'no-store');
    ctx.body = await workers.pushToken(ctx.params.id ?? '', lease(ctx, body));
  });
  router.post(`${BASE}/jobs/:id/log`, asWorker, async (ctx: Context) => {
    const body = parseBody(logBody, await readJsonBody(ctx));
    await workers.appendLog(ctx.params.id ?? '', lease(ctx, body), body.lines);
    emptyResponse(ctx, 204);
  });
  router.post(`${BASE}/jobs/:id/finish`, asWorker, async (ctx: Context) => {
    const { agent, attempt, log, ...report } = parseBody(finishBody, await readJsonBody(ctx));
    ctx.body = { state: await workers.finish(ctx.params.id ?? '', lease(ctx, { agent, attempt }), report, log) };
  });
  return router;
}
