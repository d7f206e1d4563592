// Types of the change history and of reload snapshots. A history entry records one write to one
// resource; a snapshot records the configuration that one successful reload rendered.
import type { ClusterConfig } from './model.js';

export type HistoryAction = 'create' | 'update' | 'delete';

export interface HistoryEntry {
  id: string;
  /** When the change was requested, ISO 8601. */
  at: string;
  /** The caller's identity: an IAM ARN on AWS, the X-Vaas-Caller header or `local` locally, `system` for internal writes. */
  caller: string;
  /** The resource kind, for example `director`. */
  kind: string;
  resourceId: string;
  action: HistoryAction;
  /** The task that reloads the affected clusters; absent when the change affected none. */
  taskId?: string;
  /** Clusters whose VCL the change affected. */
  clusters: string[];
  /** The changeSeq that the task got on each affected cluster; a reload with this seq or a later one contains the change. */
  seqs?: Record<string, number>;
  /** The resource as the API showed it before the change; absent for a create. */
  before?: Record<string, unknown>;
  /** The resource as the API shows it after the change; absent for a delete. */
  after?: Record<string, unknown>;
  /** Set on the writes of a rollback: the cluster and the snapshot that they restored. */
  rollback?: { clusterId: string; snapshotSeq: number };
}

/** One page of a newest-first listing. */
export interface HistoryPage {
  limit: number;
  /** The `next` value of the previous page. */
  cursor?: string;
}

/** The configuration that one successful reload of a cluster rendered, and the VCL each server got. */
export interface ReloadSnapshot {
  clusterId: string;
  /** The cluster's changeSeq that the reload read before rendering; every change up to it is included. */
  seq: number;
  reloadedAt: string;
  /** Tasks whose changes this reload made live first. */
  taskIds: string[];
  /** Servers that run the rendered VCL after the reload; disabled servers and failed maintenance servers are absent. */
  servers: { serverId: string; vclName: string; vclHash: string }[];
  config: ClusterConfig;
}
