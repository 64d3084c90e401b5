import type Router from '@koa/router';
import type { RegistryBuilds } from '../builds/setup.js';
import type { RegistryDeploy } from '../deploy/setup.js';
import type { ReadinessChecks } from '../health/health.js';
import { createRouter } from '../http/router.js';
import type { MaintenanceMode } from '../maintenance/read-only.js';
import type { RegistryMetrics } from '../metrics/metrics.js';
import { registerAdminRoutes, type AdminApiServices } from './admin-api.js';
import { gcAdminRouter, type GcAdminServices } from './admin-gc.js';
import { webhookAdminRouter, type WebhookAdminServices } from './admin-webhooks.js';
import { buildsAdminRouter } from './builds-admin.js';
import { buildHooksRouter } from './builds-hooks.js';
import { buildWorkerRouter } from './builds-worker.js';
import { deployAdminRouter } from './deploy-admin.js';
import { nodeApiRouter } from './deploy-nodes.js';
import { healthRouter } from './health.js';
import { maintenanceAdminRouter } from './maintenance.js';
import { metricsRouter } from './metrics.js';
import { registerTokenRoutes, type TokenEndpointServices } from './token.js';

/** The services behind the routes served beside /v2/, handed over by the feature modules' setups. */
export interface OperatorApis {
  /** undefined when auth is off: no token endpoint, no account API. */
  auth: { token: TokenEndpointServices; admin: AdminApiServices } | undefined;
  /** undefined when gc.adminApi is off. */
  gc: GcAdminServices | undefined;
  webhooks: WebhookAdminServices;
  /** Stacks and nodes (admin), and the agents' node API (open, each route behind the node credential). */
  deploy: RegistryDeploy;
  /** Build projects and builds (admin), the forges' webhooks and the build workers' API (open, each signed or token-checked). */
  builds: RegistryBuilds;
  maintenance: MaintenanceMode;
  metrics: RegistryMetrics;
  readiness: ReadinessChecks;
}

/** The routers served beside /v2/, by who may call them. */
export interface ServedRouters {
  /** Answered to anyone: the token endpoint, JWKS, health probes, metrics. */
  open: Router[];
  /** The admin API: each of its routes runs the admin guard first. */
  admin: Router[];
}

export function operatorRouters(apis: OperatorApis): ServedRouters {
  const open: Router[] = [];
  const admin: Router[] = [];
  if (apis.auth) {
    const tokenRouter = createRouter();
    registerTokenRoutes(tokenRouter, apis.auth.token);
    open.push(tokenRouter);
    const accountRouter = createRouter();
    registerAdminRoutes(accountRouter, apis.auth.admin);
    admin.push(accountRouter);
  }
  if (apis.gc) admin.push(gcAdminRouter(apis.gc));
  open.push(metricsRouter(apis.metrics), healthRouter(apis.readiness));
  admin.push(webhookAdminRouter(apis.webhooks), maintenanceAdminRouter(apis.maintenance));
  admin.push(deployAdminRouter(apis.deploy));
  open.push(nodeApiRouter(apis.deploy.nodes, apis.deploy.logs));
  admin.push(buildsAdminRouter(apis.builds));
  open.push(buildHooksRouter(apis.builds), buildWorkerRouter(apis.builds));
  return { open, admin };
}
