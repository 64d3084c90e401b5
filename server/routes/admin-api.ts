import type Router from '@koa/router';
import type { Context } from 'koa';
import type { Authorizer } from '../auth/authorizer.js';
import { effectivePermissions } from '../auth/effective-permissions.js';
import type { IdentityStore } from '../auth/identities.js';
import type { NewPermissionRule, PermissionStore } from '../auth/permissions.js';
import type { RedisIdentityStore } from '../auth/redis-identities.js';
import { readJsonBody } from '../auth/small-body.js';
import { CodedError, DistributionErrors } from '../../platform/errors.js';
import { emptyResponse } from '../http/responses.js';

export interface AdminApiServices {
  authorizer: Authorizer;
  /** Every account, htpasswd ones included, for the effective-permissions query. */
  identities: IdentityStore;
  accounts: RedisIdentityStore;
  rules: PermissionStore;
}

const BASE = '/admin/v1';

/** Users, robots and permission rules. Only for admins: served as an admin router (app.ts), behind auth/admin-guard.ts. */
export function registerAdminRoutes(router: Router, services: AdminApiServices): void {
  const { accounts, rules } = services;

  router.get(`${BASE}/users`, async (ctx: Context) => {
    ctx.body = { users: await accounts.listUsers() };
  });
  router.put(`${BASE}/users/:account`, async (ctx: Context) => {
    const body = await readJsonBody(ctx);
    ctx.body = await accounts.putUser(ctx.params.account ?? '', requiredString(body, 'password'), {
      groups: optionalStrings(body, 'groups'),
      admin: typeof body.admin === 'boolean' ? body.admin : undefined,
    });
  });
  router.delete(`${BASE}/users/:account`, async (ctx: Context) => {
    if (!(await accounts.deleteUser(ctx.params.account ?? ''))) throw notFound('user', ctx.params.account);
    emptyResponse(ctx, 204);
  });

  router.get(`${BASE}/robots`, async (ctx: Context) => {
    ctx.body = { robots: await accounts.listRobots() };
  });
  router.post(`${BASE}/robots`, async (ctx: Context) => {
    const body = await readJsonBody(ctx);
    const expiresAt = typeof body.expiresAt === 'string' ? new Date(body.expiresAt) : undefined;
    if (expiresAt && Number.isNaN(expiresAt.getTime()))
      throw new CodedError(DistributionErrors.UNSUPPORTED, 'expiresAt must be an ISO 8601 time');
    const created = await accounts.createRobot({
      name: requiredString(body, 'name'),
      groups: optionalStrings(body, 'groups'),
      expiresAt,
      description: typeof body.description === 'string' ? body.description : undefined,
    });
    ctx.status = 201;
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { ...created.robot, secret: created.secret };
  });
  router.post(`${BASE}/robots/:robot/secret`, async (ctx: Context) => {
    const regenerated = await accounts.regenerateRobotSecret(ctx.params.robot ?? '');
    if (!regenerated) throw notFound('robot', ctx.params.robot);
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { ...regenerated.robot, secret: regenerated.secret };
  });
  router.delete(`${BASE}/robots/:robot`, async (ctx: Context) => {
    if (!(await accounts.deleteRobot(ctx.params.robot ?? ''))) throw notFound('robot', ctx.params.robot);
    emptyResponse(ctx, 204);
  });

  router.get(`${BASE}/permissions`, async (ctx: Context) => {
    ctx.body = { rules: await rules.list() };
  });
  router.post(`${BASE}/permissions`, async (ctx: Context) => {
    const body = await readJsonBody(ctx);
    const rule: NewPermissionRule = {
      subject: requiredString(body, 'subject'),
      repositories: requiredString(body, 'repositories'),
      actions: (optionalStrings(body, 'actions') ?? []) as NewPermissionRule['actions'],
    };
    ctx.status = 201;
    ctx.body = await rules.add(rule);
  });
  router.delete(`${BASE}/permissions/:id`, async (ctx: Context) => {
    if (!(await rules.remove(ctx.params.id ?? ''))) throw notFound('rule', ctx.params.id);
    emptyResponse(ctx, 204);
  });
  router.get(`${BASE}/effective-permissions/:account`, async (ctx: Context) => {
    const repository = typeof ctx.query.repository === 'string' ? ctx.query.repository : undefined;
    ctx.body = await effectivePermissions(services.identities, services.authorizer, ctx.params.account ?? '', repository);
  });
}

function requiredString(body: Record<string, unknown>, key: string): string {
  const value = body[key];
  if (typeof value !== 'string' || value === '') throw new CodedError(DistributionErrors.UNSUPPORTED, `${key} is required`);
  return value;
}

function optionalStrings(body: Record<string, unknown>, key: string): string[] | undefined {
  const value = body[key];
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || !value.every((entry) => typeof entry === 'string'))
    throw new CodedError(DistributionErrors.UNSUPPORTED, `${key} must be a list of strings`);
  return value as string[];
}

function notFound(kind: string, name: string | undefined): CodedError {
  return new CodedError(DistributionErrors.NAME_UNKNOWN, `no ${kind} ${name ?? ''}`);
}
