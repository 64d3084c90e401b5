import type { ServiceSpec } from './compose/stack-spec.js';
import type { ReplicaHealth, RolloutState } from './rollout.js';

/** What a revision records: the spec and the image resolved to a digest, so every replica runs the same bytes. */
export interface Revision {
  number: number;
  spec: ServiceSpec;
  digest: string;
  /** Why it was made. */
  cause: 'deploy' | 'push' | 'rollback' | 'scale';
  createdAt: string;
}

export interface SlotRecord {
  node: string;
  revision: number;
  startedAt: number;
  /** Since when the node has reported the replica healthy without a break; null when it has not. */
  healthySince: number | null;
}

/** The controller's state of one service, written only by the controller holding the lease. */
export interface ServiceState {
  /** The revision the current (or last) rollout was started for; 0: none yet. */
  revision: number;
  rollout: RolloutState | null;
  slots: Record<string, SlotRecord>;
  /** Why slots are unplaced, when they are. */
  unplaced: string | null;
}

export interface ServiceRecord {
  stack: string;
  name: string;
  /** The revision the admin API last asked for; 0: the service is being removed. */
  desired: number;
  state: ServiceState;
  /** Bumped by each controller write: a write from an older read is refused. */
  generation: number;
}

export const EMPTY_STATE: ServiceState = { revision: 0, rollout: null, slots: {}, unplaced: null };

/** One replica a node must run. */
export interface Assignment {
  replica: string;
  stack: string;
  service: string;
  slot: string;
  revision: number;
  /** `<repository>@<digest>` in this registry. */
  image: string;
  spec: ServiceSpec;
}

export interface NodeRecord {
  name: string;
  labels: Record<string, string>;
  /** Where its published ports answer. */
  address: string;
  capacity: { cpus: number; memoryBytes: number };
  /** SHA-256 of the node credential, hex. */
  credentialHash: string;
  availability: 'active' | 'drain';
  joinedAt: string;
}

export interface ReplicaReport {
  replica: string;
  revision: number;
  health: ReplicaHealth;
  /** What the agent saw, for `service ps`. */
  message: string;
}

export interface HistoryEntry {
  at: string;
  revision: number;
  event: 'created' | 'started' | 'succeeded' | 'reverting' | 'reverted' | 'paused' | 'failed' | 'quarantined';
  detail: string | null;
}
