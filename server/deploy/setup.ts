import type { Redis } from 'ioredis';
import type { Logger } from '../../platform/logger.js';
import type { Config } from '../config.js';
import type { MetadataStore } from '../metadata/metadata-store.js';
import type { EventSink } from '../webhooks/events.js';
import { AssignmentWatch } from './assignment-watch.js';
import { DeployController } from './controller.js';
import { DeployService } from './deploy-service.js';
import { DeployStore } from './deploy-store.js';
import { LogRelay } from './log-relay.js';
import { NodeService, type PullTokenIssuer } from './node-service.js';

export interface RegistryDeploy {
  deploy: DeployService;
  nodes: NodeService;
  store: DeployStore;
  /** `berth service logs`: requests to the nodes and their lines back. */
  logs: LogRelay;
  joinTokenTtlMs: number;
  /** The registry's event sink, with pushes to tracked tags also starting rollouts. */
  events: EventSink;
  stop(): Promise<void>;
}

/** The deployment control plane on the registry's Redis: services for the routes, the push hook and the controller. */
export async function createDeploy(
  config: Config,
  redis: Redis,
  metadata: MetadataStore,
  events: EventSink,
  pullTokens: PullTokenIssuer,
  logger: Logger,
  observePass: (seconds: number) => void,
): Promise<RegistryDeploy> {
  const log = logger.child({ component: 'deploy' });
  const store = new DeployStore(redis, config.redis.keyPrefix);
  const settings = config.deploy;
  const graceMs = settings.nodeGraceSeconds * 1000;
  const deploy = new DeployService(store, metadata, log);
  const controller = new DeployController(store, redis.duplicate(), log, {
    leaseMs: settings.controllerLeaseSeconds * 1000,
    tickMs: settings.controllerTickMs,
    nodeGraceMs: graceMs,
    now: Date.now,
    observePass,
  });
  await controller.start();
  const watch = new AssignmentWatch(redis.duplicate(), store.keys.assignmentsChannel());
  await watch.start();
  return {
    deploy,
    nodes: new NodeService(store, watch, pullTokens, graceMs, Date.now),
    store,
    logs: new LogRelay(redis, store.keys),
    joinTokenTtlMs: settings.joinTokenTtlSeconds * 1000,
    events: deploy.pushHook(events),
    stop: async () => {
      watch.stop();
      await controller.stop();
    },
  };
}
