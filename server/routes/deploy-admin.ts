import type Router from '@koa/router';
import type { Context } from 'koa';
import { PassThrough } from 'node:stream';
import { z } from 'zod';
import { readJsonBody } from '../auth/small-body.js';
import { DeployErrors } from '../deploy/deploy-errors.js';
import { serviceId } from '../deploy/deploy-keys.js';
import type { RelayedLine } from '../deploy/log-relay.js';
import type { RegistryDeploy } from '../deploy/setup.js';
import { createRouter } from '../http/router.js';
import { emptyResponse } from '../http/responses.js';
import { validated } from '../http/validated.js';

const BASE = '/admin/v1';

const deployBody = z.strictObject({ compose: z.record(z.string(), z.unknown()) });
const scaleBody = z.strictObject({ replicas: z.number().int().min(0) });
const nodeChange = z.strictObject({
  labels: z.record(z.string().min(1), z.string().nullable()).optional(),
  availability: z.enum(['active', 'drain']).optional(),
});
const tokenBody = z.strictObject({ ttlSeconds: z.number().int().positive().optional() });
const logsQuery = z.strictObject({
  tail: z.union([z.literal('all'), z.coerce.number().int().min(0)]).default('all'),
  follow: z
    .enum(['true', 'false'])
    .default('false')
    .transform((value) => value === 'true'),
});

/** Stacks, services, rollouts and nodes for operators (`berth deploy|stack|service|rollout|node`). An admin router. */
export function deployAdminRouter({ deploy, nodes, store, logs, joinTokenTtlMs }: RegistryDeploy): Router {
  const router = createRouter();
  router.post(`${BASE}/stacks/:stack`, async (ctx: Context) => {
    const { compose } = parse(deployBody, await readJsonBody(ctx));
    ctx.body = await deploy.deploy(ctx.params.stack ?? '', compose);
  });
  router.get(`${BASE}/stacks`, async (ctx: Context) => {
    const stacks = await store.stacks();
    ctx.body = { stacks: await Promise.all(stacks.map(async (name) => ({ name, services: await store.stackServices(name) }))) };
  });
  router.get(`${BASE}/stacks/:stack`, async (ctx: Context) => {
    const stack = ctx.params.stack ?? '';
    ctx.body = { stack, services: await deploy.stackStatus(stack) };
  });
  router.delete(`${BASE}/stacks/:stack`, async (ctx: Context) => {
    ctx.status = 202;
    ctx.body = await deploy.removeStack(ctx.params.stack ?? '');
  });
  router.get(`${BASE}/stacks/:stack/services/:service`, async (ctx: Context) => {
    ctx.body = await deploy.serviceStatus(ctx.params.stack ?? '', ctx.params.service ?? '');
  });
  router.get(`${BASE}/stacks/:stack/services/:service/history`, async (ctx: Context) => {
    const { stack = '', service = '' } = ctx.params;
    await deploy.requireService(stack, service);
    const id = serviceId(stack, service);
    const revisions = (await store.revisions(id)).map(({ number, digest, cause, createdAt, spec }) => ({
      number,
      digest,
      cause,
      createdAt,
      image: spec.image,
    }));
    ctx.body = { service: id, revisions, history: await store.history(id, 100) };
  });
  router.get(`${BASE}/stacks/:stack/services/:service/logs`, async (ctx: Context) => {
    const { stack = '', service = '' } = ctx.params;
    const { tail, follow } = parse(logsQuery, ctx.query);
    const targets = await deploy.logTargets(stack, service);
    const stop = new AbortController();
    ctx.req.once('close', () => stop.abort());
    ctx.set('Content-Type', 'text/plain; charset=utf-8');
    ctx.set('Cache-Control', 'no-store');
    const out = new PassThrough();
    ctx.body = out;
    void (async () => {
      for await (const line of logs.gather(targets, { tail: tail === 'all' ? null : tail, follow }, stop.signal))
        out.write(`${replicaLabel(line)} | ${line.text}\n`);
    })()
      .catch((error: Error) => out.write(`berth: the logs could not all be read: ${error.message}\n`))
      .finally(() => out.end());
  });
  router.post(`${BASE}/stacks/:stack/services/:service/rollback`, async (ctx: Context) => {
    ctx.body = await deploy.rollback(ctx.params.stack ?? '', ctx.params.service ?? '');
  });
  router.post(`${BASE}/stacks/:stack/services/:service/scale`, async (ctx: Context) => {
    const { replicas } = parse(scaleBody, await readJsonBody(ctx));
    ctx.body = await deploy.scale(ctx.params.stack ?? '', ctx.params.service ?? '', replicas);
  });

  router.post(`${BASE}/nodes/tokens`, async (ctx: Context) => {
    const { ttlSeconds } = parse(tokenBody, await readJsonBody(ctx));
    ctx.status = 201;
    ctx.set('Cache-Control', 'no-store');
    ctx.body = await nodes.issueJoinToken(ttlSeconds === undefined ? joinTokenTtlMs : ttlSeconds * 1000);
  });
  router.get(`${BASE}/nodes`, async (ctx: Context) => {
    ctx.body = { nodes: await nodes.list() };
  });
  router.patch(`${BASE}/nodes/:node`, async (ctx: Context) => {
    ctx.body = await nodes.update(ctx.params.node ?? '', parse(nodeChange, await readJsonBody(ctx)));
  });
  router.delete(`${BASE}/nodes/:node`, async (ctx: Context) => {
    await nodes.remove(ctx.params.node ?? '');
    emptyResponse(ctx, 204);
  });

  return router;
}

/** As `docker service logs`: `<stack>_<service>.<slot>@<node>`. */
function replicaLabel(line: RelayedLine): string {
  const [stack, service, slot] = line.replica.split('/');
  return `${stack}_${service}.${slot}@${line.node}`;
}

export function parse<T extends z.ZodType>(schema: T, body: unknown): z.output<T> {
  return validated(schema, body, DeployErrors.REQUEST_INVALID);
}
