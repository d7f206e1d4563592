import { NotFoundError } from '../domain/errors.js';
import type { Task, TaskClusterState } from '../domain/model.js';
import type { ClusterStateStore, ConfigStore, TaskMessage, TaskQueue, TaskStore } from '../ports.js';

export interface ChangeDeps {
  config: ConfigStore;
  tasks: TaskStore;
  clusterState: ClusterStateStore;
  queue: TaskQueue;
  now: () => Date;
  newId: () => string;
}

export interface ChangeResult<T> {
  resource: T;
  /** The task that reloads the affected clusters; absent when the change affects none. */
  task?: Task;
}

/**
 * Saves a change, then queues one task for the clusters whose VCL it affects.
 *
 * An outbox entry is written before the save and removed once the task is queued. A crash at any
 * step leaves that entry behind, and the reconciler finishes its task. So a saved change always
 * gets a reload, even when the caller received an error.
 */
export async function commitChange<T>(
  deps: ChangeDeps,
  affectedClusters: Iterable<string>,
  save: () => Promise<T>,
): Promise<ChangeResult<T>> {
  const clusters = [...new Set(affectedClusters)].sort();
  if (clusters.length === 0) return { resource: await save() };

  const taskId = deps.newId();
  const timestamp = deps.now().toISOString();
  await deps.tasks.putOutbox({ taskId, clusters, createdAt: timestamp });

  let resource: T;
  try {
    resource = await save();
  } catch (error) {
    await deps.tasks.deleteOutbox(taskId);
    throw error;
  }

  const task = await queueTask(deps, { id: taskId, timestamp, clusters, origin: 'change' });
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
  await deps.tasks.putTask(task);
  await sendTask(deps, task);
  return task;
}

/** Sends the messages of a stored task, records the request on its clusters and clears its outbox entry. */
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
  await deps.tasks.deleteOutbox(task.id);
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
