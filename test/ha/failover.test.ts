import test, { type ExecutionContext } from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DockerDaemon } from '../helpers/dockerd.js';
import { HaDeployment } from '../helpers/ha-deployment.js';
import { ImagePusher, pullProblem, type PushAttempt, type PushClient } from '../helpers/ha-pushes.js';
import { request } from '../helpers/http-client.js';
import { S3Server } from '../helpers/s3-server.js';

// Registry replicas on one s3rver bucket behind haproxy (round robin), Redis primary + replica under three
// sentinels: the deployment of deploy/ha/, with real docker, skopeo, haproxy and redis processes.
let daemon: DockerDaemon | undefined;
let s3: S3Server | undefined;
let workDir: string | undefined;

test.before(async () => {
  workDir = await mkdtemp(path.join(tmpdir(), 'berth-ha-test-'));
  [daemon, s3] = await Promise.all([DockerDaemon.start(), S3Server.start()]);
});

test.after.always(async () => {
  await daemon?.stop();
  await s3?.stop();
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

async function withDeployment(
  replicas: number,
  minReplicasAcked: number,
  work: (deployment: HaDeployment) => Promise<void>,
): Promise<void> {
  // Two Redis replicas: under minReplicasAcked 1 writes go on as soon as one is promoted (the other follows it).
  const deployment = await HaDeployment.start(s3!, {
    replicas,
    redisReplicas: 2,
    minReplicasAcked,
    s3Prefix: `ha-${Date.now()}-${minReplicasAcked}`,
  });
  try {
    await work(deployment);
  } finally {
    await deployment.stop();
  }
}

/** Upload ids whose requests (POST, PATCH, PUT) reached more than one replica, from the replicas' request logs. */
function uploadsSpreadOverReplicas(deployment: HaDeployment): string[] {
  const replicasPerUpload = new Map<string, Set<number>>();
  deployment.registries.forEach((registry, index) => {
    for (const [, id] of registry.logs.matchAll(/"path":"\/v2\/[^"]+\/blobs\/uploads\/([0-9a-f-]{36})[^"]*"/g)) {
      replicasPerUpload.set(id!, (replicasPerUpload.get(id!) ?? new Set()).add(index));
    }
  });
  return [...replicasPerUpload].filter(([, replicas]) => replicas.size > 1).map(([id]) => id);
}

/** Responses with status 500 in any replica's request log: a failover must give 503s, never those. */
function internalErrors(deployment: HaDeployment): string[] {
  return deployment.logs.split('\n').filter((line) => /"status":500\b/.test(line));
}

test.serial(
  'docker and skopeo push and pull through haproxy round robin, with the requests of one upload on different replicas',
  async (t) => {
    await withDeployment(3, 1, async (deployment) => {
      const pusher = new ImagePusher(daemon!, workDir!, deployment.balancer.host);
      for (const client of ['docker', 'skopeo'] as const) {
        const push = await pusher.push(client, 'round-robin');
        t.true(push.acknowledged, push.output);
        t.is(await pullProblem(deployment.balancer.url, push), undefined);
      }
      const reference = `${deployment.balancer.host}/ha/docker:round-robin`;
      await daemon!.docker(['rmi', reference]);
      const pulled = await daemon!.docker(['pull', reference]);
      t.regex(pulled.stdout, /Pull complete/);
      t.true(uploadsSpreadOverReplicas(deployment).length > 0, 'no upload had its requests on two replicas');
      t.deepEqual(internalErrors(deployment), []);
    });
  },
);

interface FailoverRun {
  pushes: PushAttempt[];
  killedAt: number;
  promotedAt: number;
  /** Acknowledged pushes that do not pull back whole afterwards, with what is wrong. */
  lost: string[];
}

// The replica stops receiving the replication stream some time before the primary is killed (a lagging or
// cut-off replica: the case where asynchronous replication loses acknowledged writes): until each client
// had a push acknowledged meanwhile, or at most this long.
const STALL_BEFORE_KILL_MS = 3_000;
const PUSHES_BEFORE_STALL = 2;
const PUSHES_AFTER_KILL = 1;
const LOOP_LIMIT_MS = 50_000;

/**
 * A docker loop and a skopeo loop push fresh images through haproxy; after each has pushed a few, the
 * replication links stall, then the primary is SIGKILLed; Sentinel promotes a replica and points the other
 * at it. The loops go on until each has had a push acknowledged after the kill (bounded in time and count);
 * then every acknowledged push is pulled back.
 */
async function pushThroughFailover(deployment: HaDeployment): Promise<FailoverRun> {
  const pusher = new ImagePusher(daemon!, workDir!, deployment.balancer.host);
  const pushes: PushAttempt[] = [];
  let killedAt = 0;
  const deadline = Date.now() + LOOP_LIMIT_MS;
  const loop = async (client: PushClient) => {
    for (let index = 0; index < 60 && Date.now() < deadline; index++) {
      const push = await pusher.push(client, `push-${index}`);
      pushes.push(push);
      const afterKill = pushes.filter((each) => each.client === client && each.acknowledged && killedAt > 0 && each.startedAt > killedAt);
      if (afterKill.length >= PUSHES_AFTER_KILL) return;
    }
  };
  const acknowledgedBy = (client: PushClient) => pushes.filter((push) => push.client === client && push.acknowledged).length;
  const failover = async () => {
    while (Math.min(acknowledgedBy('docker'), acknowledgedBy('skopeo')) < PUSHES_BEFORE_STALL && Date.now() < deadline) await sleep(100);
    deployment.redis.stallReplication();
    const stalledAt = Date.now();
    const acknowledgedSinceStall = (client: PushClient) =>
      pushes.some((push) => push.client === client && push.acknowledged && push.startedAt > stalledAt);
    while (!(acknowledgedSinceStall('docker') && acknowledgedSinceStall('skopeo')) && Date.now() < stalledAt + STALL_BEFORE_KILL_MS) {
      await sleep(100);
    }
    killedAt = Date.now();
    await deployment.redis.killPrimary();
    await deployment.redis.waitForPromotion();
    return Date.now();
  };
  const [promotedAt] = await Promise.all([failover(), loop('docker'), loop('skopeo')]);
  const lost: string[] = [];
  for (const push of pushes.filter((each) => each.acknowledged)) {
    const problem = await pullProblem(deployment.balancer.url, push);
    if (problem) lost.push(problem);
  }
  return { pushes, killedAt, promotedAt, lost };
}

function describeRun(run: FailoverRun): string {
  const acknowledged = run.pushes.filter((push) => push.acknowledged);
  const firstAfterKill = (client: PushClient) =>
    Math.min(...acknowledged.filter((push) => push.client === client && push.endedAt > run.killedAt).map((push) => push.endedAt)) -
    run.killedAt;
  return [
    `${run.pushes.length} pushes, ${acknowledged.length} acknowledged, ${run.lost.length} acknowledged and lost`,
    `promotion ${run.promotedAt - run.killedAt} ms after the kill`,
    `first acknowledged push after the kill: docker +${firstAfterKill('docker')} ms, skopeo +${firstAfterKill('skopeo')} ms`,
  ].join('; ');
}

async function assertEveryReplicaReady(t: ExecutionContext, deployment: HaDeployment): Promise<void> {
  for (const registry of deployment.registries) {
    const ready = await request(registry.url, '/readyz');
    t.is(ready.status, 200, await ready.text());
  }
}

test.serial(
  'with minReplicasAcked 1, SIGKILL of the primary during docker and skopeo pushes loses no acknowledged push, and the replicas follow the promoted replica by themselves',
  async (t) => {
    await withDeployment(2, 1, async (deployment) => {
      const run = await pushThroughFailover(deployment);
      t.log(describeRun(run));
      t.deepEqual(run.lost, [], 'acknowledged pushes lost');
      for (const client of ['docker', 'skopeo'] as const) {
        const after = run.pushes.filter((push) => push.client === client && push.acknowledged && push.startedAt > run.killedAt);
        t.true(
          after.length >= 1,
          `${client}: no push acknowledged after the failover\n${run.pushes.map((push) => push.output).join('\n')}`,
        );
      }
      t.true(run.pushes.filter((push) => push.acknowledged && push.startedAt < run.killedAt).length >= 2 * PUSHES_BEFORE_STALL);
      await assertEveryReplicaReady(t, deployment);
      t.deepEqual(internalErrors(deployment), []);
    });
  },
);

test.serial('without minReplicasAcked the same failover is measured: acknowledged pushes lost are logged', async (t) => {
  await withDeployment(2, 0, async (deployment) => {
    const run = await pushThroughFailover(deployment);
    t.log(describeRun(run));
    if (run.lost.length > 0) t.log(`lost:\n${run.lost.join('\n')}`);
    await assertEveryReplicaReady(t, deployment);
    t.deepEqual(internalErrors(deployment), []);
  });
});
