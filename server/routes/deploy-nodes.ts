import type Router from '@koa/router';
import type { Context, Next } from 'koa';
import { z } from 'zod';
import { readJsonBody } from '../auth/small-body.js';
import type { LogRelay } from '../deploy/log-relay.js';
import type { NodeService } from '../deploy/node-service.js';
import { createRouter } from '../http/router.js';
import { emptyResponse } from '../http/responses.js';
import { parse } from './deploy-admin.js';

const BASE = '/deploy/v1';
const MAX_WAIT_SECONDS = 60;

const joinBody = z.strictObject({
  // Missing is answered like forged: 401, not a validation error.
  token: z.string().default(''),
  name: z.string().regex(/^[a-z0-9][a-z0-9.-]{0,62}$/, 'a node name is lowercase letters, digits, . and -'),
  labels: z.record(z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._/-]*$/), z.string()).default({}),
  address: z.string().min(1),
  capacity: z.strictObject({ cpus: z.number().positive(), memoryBytes: z.number().int().positive() }),
});

const reportBody = z.strictObject({
  replicas: z.array(
    z.strictObject({
      replica: z.string().min(1),
      revision: z.number().int().min(1),
      health: z.enum(['starting', 'healthy', 'unhealthy', 'failed']),
      message: z.string().max(1024).default(''),
    }),
  ),
});

const logPollQuery = z.strictObject({ wait: z.coerce.number().int().min(0).max(MAX_WAIT_SECONDS).default(0) });

const pollQuery = z.strictObject({
  version: z.coerce.number().int().min(0).default(0),
  wait: z.coerce.number().int().min(0).max(MAX_WAIT_SECONDS).default(0),
});

/**
 * The API the agents call. Joining needs a join token; everything else the credential issued at the join,
 * and acts only on the node that credential names: its heartbeat, its assignments, its replicas' states.
 * Served open (no admin or registry guard): the node guard below runs in front of each route but the join.
 */
export function nodeApiRouter(nodes: NodeService, logs: LogRelay): Router {
  const router = createRouter();
  const asNode = async (ctx: Context, next: Next) => {
    ctx.state.node = await nodes.authenticate(ctx.get('Authorization') || undefined);
    await next();
  };
  router.post(`${BASE}/join`, async (ctx: Context) => {
    const request = parse(joinBody, await readJsonBody(ctx));
    ctx.set('Cache-Control', 'no-store');
    ctx.body = await nodes.join(request);
  });
  router.post(`${BASE}/node/heartbeat`, asNode, async (ctx: Context) => {
    await nodes.heartbeat(ctx.state.node as string);
    emptyResponse(ctx, 204);
  });
  router.get(`${BASE}/node/assignments`, asNode, async (ctx: Context) => {
    const { version, wait } = parse(pollQuery, ctx.query);
    ctx.body = await nodes.assignments(ctx.state.node as string, version, wait * 1000, () => ctx.req.destroyed);
  });
  router.get(`${BASE}/node/log-requests`, asNode, async (ctx: Context) => {
    const { wait } = parse(logPollQuery, ctx.query);
    ctx.body = { requests: await logs.pending(ctx.state.node as string, wait * 1000, () => ctx.req.destroyed) };
  });
  router.post(`${BASE}/node/logs/:id`, asNode, async (ctx: Context) => {
    await logs.receive(ctx.state.node as string, ctx.params.id ?? '', ctx.req);
    // The reader may have gone before the node's lines ended: what is left of the body is not read.
    ctx.set('Connection', 'close');
    emptyResponse(ctx, 204);
  });
  router.post(`${BASE}/node/pull-token`, asNode, async (ctx: Context) => {
    const { token, repositories } = await nodes.pullToken(ctx.state.node as string);
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { token: token?.token ?? null, expiresIn: token?.expiresIn ?? null, repositories };
  });
  router.put(`${BASE}/node/reports`, asNode, async (ctx: Context) => {
    const { replicas } = parse(reportBody, await readJsonBody(ctx));
    await nodes.report(ctx.state.node as string, replicas);
    emptyResponse(ctx, 204);
  });
  return router;
}
