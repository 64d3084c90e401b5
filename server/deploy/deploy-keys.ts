import { KeySpace } from '../metadata/keys.js';

/**
 * Every Redis key of the deployment control plane, as metadata/keys.ts does for the registry's: nothing else
 * in server/deploy builds a key name, and the scripts (in deploy-store.ts) receive them as KEYS.
 *
 *   <p>deploy:stacks                   SET stack names
 *   <p>deploy:stack:<stack>            SET service names of the stack
 *   <p>deploy:removing                 SET <stack>/<svc> of removed stacks whose replicas the controller has
 *                                      yet to take back (desired 0)
 *   <p>deploy:svc:<stack>/<svc>        HASH desired (revision number the admin API asked for), state (the
 *                                      controller's JSON: rollout, slots, generation)
 *   <p>deploy:revs:<stack>/<svc>       HASH revision number -> revision JSON (spec + digest); seq: last number
 *                                      (the last REVISIONS_KEPT and those its state refers to; only seq stays
 *                                      once the service is removed)
 *   <p>deploy:history:<stack>/<svc>    LIST history entries, newest first, capped
 *   <p>deploy:quarantine:<repo>:<tag>  SET digests that failed a rollout of that tag
 *   <p>deploy:track:<repo>:<tag>       SET <stack>/<svc> following that tag
 *   <p>deploy:nodes                    HASH node name -> node JSON (labels, address, credential hash, drain)
 *   <p>deploy:seen                     ZSET node name -> last heartbeat (ms)
 *   <p>deploy:assign:<node>            HASH replica id -> assignment JSON; version: a counter bumped on change
 *   <p>deploy:report:<node>            HASH replica id -> reported state JSON
 *   <p>deploy:join-tokens              HASH token id -> JSON { hash, expiresAt }
 *   <p>deploy:controller               STRING the controller lease's holder; :epoch its fencing counter
 *   <p>deploy:assignments-changed      CHANNEL a node's assign key, published by the controller's write
 *   <p>deploy:log-requests:<node>      LIST log requests for the node to take (short-lived)
 *   <p>deploy:logs:<id>                STREAM the lines of one log request; :senders HASH node -> replicas it may
 *                                      send; :closed STRING once its reader went away (all short-lived)
 */
export class DeployKeys extends KeySpace {
  constructor(prefix: string) {
    super(prefix, 'deploy:');
  }

  stacks(): string {
    return this.key('stacks');
  }

  stack(stack: string): string {
    return this.key(`stack:${stack}`);
  }

  removing(): string {
    return this.key('removing');
  }

  service(id: string): string {
    return this.key(`svc:${id}`);
  }

  revisions(id: string): string {
    return this.key(`revs:${id}`);
  }

  history(id: string): string {
    return this.key(`history:${id}`);
  }

  quarantine(repository: string, tag: string): string {
    return this.key(`quarantine:${repository}:${tag}`);
  }

  trackers(repository: string, tag: string): string {
    return this.key(`track:${repository}:${tag}`);
  }

  nodes(): string {
    return this.key('nodes');
  }

  seen(): string {
    return this.key('seen');
  }

  assignments(node: string): string {
    return this.key(`assign:${node}`);
  }

  reports(node: string): string {
    return this.key(`report:${node}`);
  }

  joinTokens(): string {
    return this.key('join-tokens');
  }

  controller(): string {
    return this.key('controller');
  }

  controllerEpoch(): string {
    return this.key('controller:epoch');
  }

  /** Log requests (`berth service logs`) waiting for the node to take them. */
  logRequests(node: string): string {
    return this.key(`log-requests:${node}`);
  }

  /** The lines the nodes send for one log request. */
  logLines(id: string): string {
    return this.key(`logs:${id}`);
  }

  /** Which replicas each node asked by one log request may send lines of. */
  logSenders(id: string): string {
    return this.key(`logs:${id}:senders`);
  }

  /** Set once the reader of a log request went away: the nodes stop sending. */
  logClosed(id: string): string {
    return this.key(`logs:${id}:closed`);
  }

  /** The pub/sub channel that gets a node's assignments key when the controller changed them (long-polls wake). */
  assignmentsChannel(): string {
    return this.key('assignments-changed');
  }

  /** The pub/sub channel that wakes the controller (a push to a tracked tag, a deploy, a report). */
  wakeChannel(): string {
    return this.key('wake');
  }
}

/** `<stack>/<service>`: a service's id across the control plane. */
export function serviceId(stack: string, service: string): string {
  return `${stack}/${service}`;
}
