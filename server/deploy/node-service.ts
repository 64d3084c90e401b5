import { CodedError } from '../../platform/errors.js';
import { DeployErrors } from './deploy-errors.js';
import type { AssignmentWatch } from './assignment-watch.js';
import type { DeployStore } from './deploy-store.js';
import type { Assignment, NodeRecord, ReplicaReport } from './deploy-types.js';
import { randomSecretMatches } from '../auth/secrets.js';
import { issueSecret, splitSecret } from '../auth/issued-secrets.js';
import type { TokenService } from '../auth/token-service.js';
import type { NodePullToken, NodePullTokens } from './node-pull-tokens.js';

export const JOIN_TOKEN_PREFIX = 'berth-join';
export const NODE_CREDENTIAL_PREFIX = 'berth-node';
/** A long-poll reads the version again this often even unwoken: a client gone, a message lost with a connection. */
const RECHECK_MS = 2_000;

export interface JoinRequest {
  token: string;
  name: string;
  labels: Record<string, string>;
  address: string;
  capacity: NodeRecord['capacity'];
}

/** Who mints the nodes' pull tokens, and with what signer (undefined: the registry has no auth). */
export interface PullTokenIssuer {
  nodes: NodePullTokens;
  signer: TokenService | undefined;
}

export interface NodeView extends Omit<NodeRecord, 'credentialHash'> {
  status: 'ready' | 'down';
  lastSeen: string | null;
}

/**
 * Nodes: joining with a token the registry issued, then acting only as themselves with the credential
 * issued at the join (their own assignments, their own reports, their own heartbeat).
 */
export class NodeService {
  constructor(
    private readonly store: DeployStore,
    private readonly watch: AssignmentWatch,
    private readonly pullTokens: PullTokenIssuer,
    private readonly graceMs: number,
    private readonly now: () => number,
  ) {}

  async issueJoinToken(ttlMs: number): Promise<{ token: string; expiresAt: string }> {
    const issued = issueSecret(JOIN_TOKEN_PREFIX);
    const expiresAt = this.now() + ttlMs;
    await this.store.addJoinToken(issued.id, issued.hash, expiresAt);
    return { token: issued.token, expiresAt: new Date(expiresAt).toISOString() };
  }

  /**
   * Registers the node and returns its credential. A name whose node was seen within the grace period is
   * refused: the join token alone must not let its holder take over a live node (its assignments carry the
   * services' specs, environment included). The agent of a node resumes with its credential instead; a
   * node that is down, or removed by an operator, can be joined again (the old credential then stops working).
   */
  async join(request: JoinRequest): Promise<{ node: string; credential: string }> {
    const parts = splitSecret(JOIN_TOKEN_PREFIX, request.token);
    const stored = parts ? await this.store.joinToken(parts.id) : undefined;
    if (!parts || !stored || !randomSecretMatches(parts.secret, stored.hash) || stored.expiresAt < this.now())
      throw new CodedError(DeployErrors.JOIN_TOKEN_INVALID);
    const previous = await this.store.node(request.name);
    const seenAt = previous ? await this.store.seenAt(request.name) : undefined;
    if (seenAt !== undefined && this.now() - seenAt <= this.graceMs) {
      throw new CodedError(
        DeployErrors.NODE_NAME_IN_USE,
        `node name ${request.name} is in use by a node seen ${Math.round((this.now() - seenAt) / 1000)} s ago: ` +
          `remove that node first (berth node rm ${request.name}, or DELETE /admin/v1/nodes/${request.name}) or join under another name`,
      );
    }
    const credential = issueSecret(NODE_CREDENTIAL_PREFIX, request.name);
    await this.store.putNode({
      name: request.name,
      labels: request.labels,
      address: request.address,
      capacity: request.capacity,
      credentialHash: credential.hash,
      availability: previous?.availability ?? 'active',
      joinedAt: new Date(this.now()).toISOString(),
    });
    await this.store.heartbeat(request.name, this.now());
    await this.store.wake('join');
    return { node: request.name, credential: credential.token };
  }

  /** The node a credential belongs to, or a 401. */
  async authenticate(authorization: string | undefined): Promise<string> {
    const token = /^Bearer\s+(\S+)$/i.exec(authorization ?? '')?.[1];
    const parts = token ? splitSecret(NODE_CREDENTIAL_PREFIX, token) : undefined;
    const node = parts ? await this.store.node(parts.id) : undefined;
    if (!parts || !node || !randomSecretMatches(parts.secret, node.credentialHash)) throw new CodedError(DeployErrors.NODE_UNAUTHORIZED);
    return node.name;
  }

  async heartbeat(node: string): Promise<void> {
    await this.store.heartbeat(node, this.now());
  }

  /** Answers at once when the assignments differ from `known`, else when they change or `waitMs` passes. */
  async assignments(
    node: string,
    known: number,
    waitMs: number,
    aborted: () => boolean,
  ): Promise<{ version: number; assignments: Assignment[] }> {
    const key = this.store.keys.assignments(node);
    const deadline = Date.now() + waitMs;
    for (;;) {
      const left = deadline - Date.now();
      const changed = this.watch.changed(key, Math.min(Math.max(left, 0), RECHECK_MS));
      if (left <= 0 || aborted() || (await this.store.assignmentVersion(node)) !== known) break;
      await changed;
    }
    return this.store.assignments(node);
  }

  /**
   * A token that pulls the repositories of the replicas assigned to the node now, and nothing else (no push,
   * no catalog, no other repository): what its agent pulls their images with, rather than a login of the host.
   */
  async pullToken(name: string): Promise<{ token: NodePullToken | null; repositories: string[] }> {
    const [node, { assignments }] = await Promise.all([this.store.node(name), this.store.assignments(name)]);
    if (!node) throw new CodedError(DeployErrors.NODE_UNAUTHORIZED);
    const repositories = [...new Set(assignments.map((assignment) => assignment.spec.repository))].sort();
    return { token: this.pullTokens.nodes.mint(this.pullTokens.signer, node, repositories), repositories };
  }

  async report(node: string, reports: ReplicaReport[]): Promise<void> {
    // A node speaks only for the replicas assigned to it.
    const assigned = new Set((await this.store.assignments(node)).assignments.map((assignment) => assignment.replica));
    const foreign = reports.find((report) => !assigned.has(report.replica));
    if (foreign) throw new CodedError(DeployErrors.REQUEST_INVALID, `replica ${foreign.replica} is not assigned to node ${node}`);
    await this.store.heartbeat(node, this.now());
    await this.store.report(node, reports);
  }

  async list(): Promise<NodeView[]> {
    const [nodes, seen] = await Promise.all([this.store.nodes(), this.store.lastSeen()]);
    return nodes.map(({ credentialHash: _hidden, ...node }) => {
      const last = seen.get(node.name);
      return {
        ...node,
        status: last !== undefined && this.now() - last <= this.graceMs ? 'ready' : 'down',
        lastSeen: last === undefined ? null : new Date(last).toISOString(),
      };
    });
  }

  async update(
    name: string,
    change: { labels?: Record<string, string | null>; availability?: NodeRecord['availability'] },
  ): Promise<NodeView> {
    const node = await this.store.node(name);
    if (!node) throw new CodedError(DeployErrors.NODE_UNKNOWN, `no node ${name}`);
    const labels = { ...node.labels };
    for (const [key, value] of Object.entries(change.labels ?? {})) {
      if (value === null) delete labels[key];
      else labels[key] = value;
    }
    await this.store.putNode({ ...node, labels, availability: change.availability ?? node.availability });
    await this.store.wake('node');
    return (await this.list()).find((view) => view.name === name)!;
  }

  async remove(name: string): Promise<void> {
    if (!(await this.store.removeNode(name))) throw new CodedError(DeployErrors.NODE_UNKNOWN, `no node ${name}`);
    await this.store.wake('node');
  }
}
