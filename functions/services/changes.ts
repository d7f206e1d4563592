import { ChangePartlySavedError, NotFoundError } from '../domain/errors.js';
import type { HistoryEntry } from '../domain/history.js';
import type { Task, TaskClusterState } from '../domain/model.js';
import type {
  ClusterStateStore,
  ConfigStore,
  EntityByKind,
  EntityKind,
  HistoryStore,
  TaskMessage,
  TaskQueue,
  TaskStore,
  VarnishTransport,
} from '../ports.js';
import { checkChangeCompiles } from './compile-check.js';
import { historyEntriesFor, withTaskSeqs } from './history.js';

export interface ChangeDeps {
  config: ConfigStore;
  tasks: TaskStore;
  clusterState: ClusterStateStore;
  queue: TaskQueue;
  history: HistoryStore;
  /** Reaches the Varnish servers; a change that needs a compile check fails with 503 without it. */
  transport?: VarnishTransport;
  /** Identity that history records for changes made with these deps; `system` when absent. */
  caller?: string;
  now: () => Date;
  newId: () => string;
}

/** One entity write of a change: `before` is absent for a create, `after` for a delete. */
export interface EntityWrite<K extends EntityKind = EntityKind> {
  kind: K;
  id: string;
  before?: EntityByKind[K];
  after?: EntityByKind[K];
}

export interface ChangeRequest {
  /** Clusters whose VCL the change affects; each gets a reload. */
  clusters: Iterable<string>;
  /** Every entity that the save writes, for the compile check and the history. */
  writes: EntityWrite[];
  /** Set when the change restores a reload snapshot. */
  rollback?: HistoryEntry['rollback'];
}

export interface ChangeResult<T> {
  resource: T;
  /** The task that reloads the affected clusters; absent when the change affects none. */
  task?: Task;
}

/**
 * Saves a change, then queues one task for the clusters whose VCL it affects and records its
 * history entries.
 *
 * Before anything is written, a change to VCL code (see compile-check.ts) is compiled on a server
 * of each affected cluster. Then an outbox entry, carrying the history entries, is written before
 * the save and removed once the task is queued and the entries are written. A crash at any step
 * leaves that entry behind, and the reconciler finishes its task and its history. So a saved
 * change always gets a reload, even when the caller received an error.
 */
export async function commitChange<T>(
  deps: ChangeDeps,
  change: ChangeRequest,
  save: () => Promise<T>,
): Promise<ChangeResult<T>> {
  const clusters = [...new Set(change.clusters)].sort();
  await checkChangeCompiles(deps, change.writes, clusters);

  const taskId = deps.newId();
  const timestamp = deps.now().toISOString();
  const entries = historyEntriesFor(deps, { ...change, clusters }, timestamp);
  await deps.tasks.putOutbox({ taskId, clusters, createdAt: timestamp, changes: entries });

  let resource: T;
  try {
    resource = await save();
  } catch (error) {
    // After a partial save the outbox entry stays, so the reconciler reloads what was saved.
    if (!(error instanceof ChangePartlySavedError)) await deps.tasks.deleteOutbox(taskId);
    throw error;
  }

  const task =
    clusters.length === 0
      ? undefined
      : await queueTask(deps, { id: taskId, timestamp, clusters, origin: 'change' });
  await deps.history.putEntries(withTaskSeqs(entries, task));
  await deps.tasks.deleteOutbox(taskId);
  return { resource, task };
}

/**
 * Gives each cluster of a task the next seq of that cluster, stores the task and sends one
 * message per cluster. The seq is taken after the change was saved, so a reload that reads a
 * cluster's changeSeq first and the configuration second always reads the change.
 */
export async function queueTask(
  deps: ChangeDeps,
  request: { id: string; timestamp: string; clusters: string[]; origin: Task['origin'] },
): Promise<Task> {
  const parts: Record<string, TaskClusterState> = {};
  for (const clusterId of request.clusters) {
    const seq = await bumpUnlessDeleted(deps.clusterState, clusterId);
    if (seq !== undefined) parts[clusterId] = { seq, status: 'queued' };
  }

  const task: Task = {
    id: request.id,
    timestamp: request.timestamp,
    clusters: parts,
    pendingCount: Object.keys(parts).length,
    origin: request.origin,
  };
  await storeAndSendTask(deps, task);
  return task;
}

/**
 * Stores a task, marks it open and sends its messages. The open-task marker stays until the last
 * part finishes, so the reconciler can send the messages again if they are lost.
 */
export async function storeAndSendTask(deps: ChangeDeps, task: Task): Promise<void> {
  await deps.tasks.putTask(task);
  if (task.pendingCount > 0) await deps.tasks.putOpenTask(task.id, task.timestamp);
  await sendTask(deps, task);
}

/**
 * Sends the messages of a stored task and records the request on its clusters. The caller
 * removes the task's outbox entry, if any, once the rest of the change is recorded.
 */
export async function sendTask(deps: ChangeDeps, task: Task): Promise<void> {
  const messages: TaskMessage[] = Object.entries(task.clusters).map(([clusterId, part]) => ({
    taskId: task.id,
    clusterId,
    seq: part.seq,
    timestamp: task.timestamp,
  }));
  await deps.queue.send(messages);

  const requestedAt = deps.now().toISOString();
  for (const message of messages) await deps.clusterState.recordAttempt(message.clusterId, requestedAt);
}

async function bumpUnlessDeleted(clusterState: ClusterStateStore, clusterId: string) {
  try {
    return await clusterState.bumpChangeSeq(clusterId);
  } catch (error) {
    // A cluster deleted since the change has no VCL left to reload.
    if (error instanceof NotFoundError) return undefined;
    throw error;
  }
}
