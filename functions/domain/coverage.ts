import type { Task, TaskStatus } from './model.js';

/** The split of a cluster's queued task parts into those already live and those that need a reload. */
export interface BatchPlan<T extends { seq: number }> {
  /** Parts whose change the cluster applied already: they succeed without a reload. */
  covered: T[];
  /** Parts newer than what the cluster applied: one reload serves all of them. */
  pending: T[];
}

/**
 * Splits a cluster's task parts by the cluster's appliedSeq. Ordering uses the per-cluster
 * sequence that DynamoDB increments atomically, never timestamps, so clocks that disagree between
 * the API and the worker cannot make a stale task look new or a new one look stale.
 */
export function planBatch<T extends { seq: number }>(parts: T[], appliedSeq: number): BatchPlan<T> {
  const sorted = [...parts].sort((a, b) => a.seq - b.seq);
  return {
    covered: sorted.filter((part) => part.seq <= appliedSeq),
    pending: sorted.filter((part) => part.seq > appliedSeq),
  };
}

/** Returns the status a task shows: the worst of its clusters' parts once all finished. */
export function taskStatus(task: Task): TaskStatus {
  const statuses = Object.values(task.clusters).map((part) => part.status);
  if (statuses.some((status) => status === 'queued' || status === 'running')) {
    return statuses.some((status) => status !== 'queued') ? 'running' : 'queued';
  }
  return statuses.includes('failed') ? 'failed' : 'succeeded';
}

/** Returns when the task's last part finished, or undefined while a part is still open. */
export function taskFinishedAt(task: Task): string | undefined {
  const parts = Object.values(task.clusters);
  if (parts.some((part) => part.finishedAt === undefined)) return undefined;
  return parts
    .map((part) => part.finishedAt as string)
    .sort()
    .at(-1);
}

/** Joins the error messages of a task's failed parts, one per cluster. */
export function taskError(task: Task): string | undefined {
  const errors = Object.entries(task.clusters)
    .filter(([, part]) => part.error !== undefined)
    .map(([clusterId, part]) => `cluster ${clusterId}: ${part.error}`);
  return errors.length > 0 ? errors.join('\n') : undefined;
}
