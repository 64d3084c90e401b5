import type Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import { CodedError } from '../../platform/errors.js';
import { readJsonBody } from '../auth/small-body.js';
import { BuildErrors } from '../builds/build-errors.js';
import { projectInputSchema } from '../builds/build-types.js';
import type { RegistryBuilds } from '../builds/setup.js';
import { createRouter } from '../http/router.js';
import { emptyResponse } from '../http/responses.js';
import { validated } from '../http/validated.js';

const BASE = '/admin/v1/builds';

const secretBody = z.strictObject({ value: z.string() });
const startBody = z.strictObject({ ref: z.string().min(1), type: z.enum(['branch', 'tag']).default('branch') });
const tokenBody = z.strictObject({
  name: z
    .string()
    .regex(/^[a-z0-9][a-z0-9.-]{0,62}$/)
    .default('worker'),
  ttlSeconds: z.number().int().positive().optional(),
});
const listQuery = z.strictObject({
  project: z.string().optional(),
  state: z.enum(['queued', 'running', 'succeeded', 'failed', 'cancelled', 'superseded']).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(50),
});
const logQuery = z.strictObject({ from: z.coerce.number().int().min(0).default(0) });

/** Build projects, builds and worker tokens for operators (`berth build ...`). An admin router. */
export function buildsAdminRouter({ builds, workers, workerTokenTtlMs }: RegistryBuilds): Router {
  const router = createRouter();
  router.get(`${BASE}/projects`, async (ctx: Context) => {
    ctx.body = { projects: await builds.listProjects() };
  });
  router.post(`${BASE}/projects/:project`, async (ctx: Context) => {
    const input = parseBody(projectInputSchema, await readJsonBody(ctx));
    ctx.status = 201;
    ctx.set('Cache-Control', 'no-store');
    ctx.body = await builds.createProject(param(ctx, 'project'), input);
  });
  router.put(`${BASE}/projects/:project`, async (ctx: Context) => {
    ctx.body = await builds.updateProject(param(ctx, 'project'), parseBody(projectInputSchema, await readJsonBody(ctx)));
  });
  router.get(`${BASE}/projects/:project`, async (ctx: Context) => {
    ctx.body = await builds.showProject(param(ctx, 'project'));
  });
  router.delete(`${BASE}/projects/:project`, async (ctx: Context) => {
    await builds.removeProject(param(ctx, 'project'));
    emptyResponse(ctx, 204);
  });
  router.put(`${BASE}/projects/:project/secrets/:secret`, async (ctx: Context) => {
    const { value } = parseBody(secretBody, await readJsonBody(ctx));
    await builds.setSecret(param(ctx, 'project'), secretId(param(ctx, 'secret')), value);
    emptyResponse(ctx, 204);
  });
  router.delete(`${BASE}/projects/:project/secrets/:secret`, async (ctx: Context) => {
    await builds.removeSecret(param(ctx, 'project'), param(ctx, 'secret'));
    emptyResponse(ctx, 204);
  });
  router.post(`${BASE}/projects/:project/builds`, async (ctx: Context) => {
    const { ref, type } = parseBody(startBody, await readJsonBody(ctx));
    ctx.status = 202;
    ctx.body = { builds: await builds.startBuild(param(ctx, 'project'), { type, name: ref }) };
  });
  router.get(`${BASE}`, async (ctx: Context) => {
    ctx.body = { builds: await builds.list(parseBody(listQuery, ctx.query)) };
  });
  router.get(`${BASE}/:id`, async (ctx: Context) => {
    ctx.body = await builds.requireBuild(param(ctx, 'id'));
  });
  router.get(`${BASE}/:id/logs`, async (ctx: Context) => {
    const { from } = parseBody(logQuery, ctx.query);
    ctx.body = await builds.logs(param(ctx, 'id'), from);
  });
  router.post(`${BASE}/:id/cancel`, async (ctx: Context) => {
    ctx.body = await builds.cancel(param(ctx, 'id'));
  });
  router.post(`${BASE}/:id/retry`, async (ctx: Context) => {
    ctx.status = 202;
    ctx.body = { builds: [await builds.retry(param(ctx, 'id'))] };
  });
  router.post(`/admin/v1/build-workers/tokens`, async (ctx: Context) => {
    const { name, ttlSeconds } = parseBody(tokenBody, await readJsonBody(ctx));
    ctx.status = 201;
    ctx.set('Cache-Control', 'no-store');
    ctx.body = await workers.issueToken(name, ttlSeconds === undefined ? workerTokenTtlMs : ttlSeconds * 1000);
  });
  return router;
}

export function parseBody<T extends z.ZodType>(schema: T, body: unknown): z.output<T> {
  return validated(schema, body, BuildErrors.REQUEST_INVALID);
}

function param(ctx: Context, name: string): string {
  return (ctx.params as Record<string, string | undefined>)[name] ?? '';
}

function secretId(id: string): string {
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(id))
    throw new CodedError(BuildErrors.REQUEST_INVALID, `a secret id is letters, digits, ., _ and -: ${id}`);
  return id;
}
