import type { Context, Next } from 'koa';
import { RegistryError } from '../errors.js';
import { basicCredentials, type Authenticator } from './authenticator.js';

/**
 * Everything under /admin/ (the account API, garbage collection, whatever comes next) needs the Basic
 * credentials of an account with the admin role; one check in front of all of them, so no admin route can
 * forget it.
 */
export function guardAdminPaths(authenticator: Authenticator) {
  return async (ctx: Context, next: Next): Promise<void> => {
    if (!ctx.path.startsWith('/admin/')) return next();
    const credentials = basicCredentials(ctx.get('Authorization') || undefined);
    if (!credentials) {
      throw new RegistryError('UNAUTHORIZED', 401, 'admin credentials required', { headers: { 'WWW-Authenticate': 'Basic realm="berth-admin"' } });
    }
    const identity = await authenticator.login(credentials.username, credentials.password, ctx.ip);
    if (!identity.admin) throw new RegistryError('DENIED', 403, 'the admin API needs an account with the admin role');
    await next();
  };
}
