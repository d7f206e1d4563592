import type { ChangeDeps } from './changes.js';
import { queueTask, sendTask, storeAndSendTask } from './changes.js';
import { recoverHistory } from './history.js';

export interface ReconcileOptions {
  /** An outbox entry younger than this may belong to a request still running. */
  outboxAgeMs: number;
  /** How long after the last reload attempt a cluster that is behind is tried again. */
  retryAfterMs: number;
  /**
   * An open task older than this gets its queue messages again: they may have been lost (an
   * emulator restart, a dead-letter queue). A resent part that is already applied just succeeds.
   */
  staleTaskAgeMs?: number;
  /**
   * Period of the fleet check that reloads every cluster, so a varnishd that restarted or was
   * changed outside vaas gets its VCL back. Servers that run the right VCL are skipped.
   * Undefined turns the check off.
   */
  resyncAfterMs?: number;
}

export interface ReconcileReport {
  /** Ids of the tasks whose outbox entries were finished; entries of changes without a task are not listed. */
  outboxTasksQueued: string[];
  /** The retry task queued for each cluster that was behind. */
  clustersRetried: { clusterId: string; taskId: string }[];
  /** Ids of open tasks whose messages were sent again. */
  staleTasksResent: string[];
  /** Clusters that the periodic fleet check queued for a reload. */
  clustersResynced: string[];
}

/**
 * Drives every saved change to a reload. It finishes the tasks and history entries of requests
 * that stopped between saving and recording them (their outbox entry is still there). It also
 * queues a retry for every cluster whose saved configuration is newer than what it applied, for
 * example after a failed reload.
 */
export async function reconcile(deps: ChangeDeps, options: ReconcileOptions): Promise<ReconcileReport> {
  const now = deps.now();
  const report: ReconcileReport = {
    outboxTasksQueued: [],
    clustersRetried: [],
    staleTasksResent: [],
    clustersResynced: [],
  };

  for (const entry of await deps.tasks.listOutbox()) {
    if (now.getTime() - Date.parse(entry.createdAt) < options.outboxAgeMs) continue;

    // An entry without clusters belongs to a change that needs no reload, only its history.
    let task = entry.clusters.length > 0 ? await deps.tasks.getTask(entry.taskId) : undefined;
    if (task) await sendTask(deps, task);
    else if (entry.clusters.length > 0) {
      task = await queueTask(deps, {
        id: entry.taskId,
        timestamp: entry.createdAt,
        clusters: entry.clusters,
        origin: 'change',
      });
    }
    await recoverHistory(deps, entry, task);
    await deps.tasks.deleteOutbox(entry.taskId);
    if (task) report.outboxTasksQueued.push(entry.taskId);
  }

  for (const cluster of await deps.config.list('cluster')) {
    if (cluster.changeSeq <= cluster.appliedSeq) continue;
    const lastAttempt = cluster.lastAttemptAt ? Date.parse(cluster.lastAttemptAt) : 0;
    if (now.getTime() - lastAttempt < options.retryAfterMs) continue;

    // The retry carries the cluster's current changeSeq without raising it: no change is new.
    const task = {
      id: deps.newId(),
      timestamp: now.toISOString(),
      clusters: { [cluster.id]: { seq: cluster.changeSeq, status: 'queued' as const } },
      pendingCount: 1,
      origin: 'retry' as const,
    };
    await storeAndSendTask(deps, task);
    report.clustersRetried.push({ clusterId: cluster.id, taskId: task.id });
  }

  report.staleTasksResent = await resendStaleTasks(deps, now, options.staleTaskAgeMs);
  if (
    options.resyncAfterMs !== undefined &&
    (await deps.tasks.claimPeriodicRun('resync', now, options.resyncAfterMs))
  ) {
    report.clustersResynced = await resyncAllClusters(deps);
  }
  return report;
}

async function resendStaleTasks(
  deps: ChangeDeps,
  now: Date,
  staleTaskAgeMs: number | undefined,
): Promise<string[]> {
  if (staleTaskAgeMs === undefined) return [];
  const resent: string[] = [];

  for (const open of await deps.tasks.listOpenTasks()) {
    if (now.getTime() - Date.parse(open.createdAt) < staleTaskAgeMs) continue;

    const task = await deps.tasks.getTask(open.taskId);
    if (!task || task.pendingCount === 0) {
      await deps.tasks.deleteOpenTask(open.taskId);
      continue;
    }
    await sendTask(deps, task);
    resent.push(task.id);
  }
  return resent;
}

/**
 * Queues a reload of every cluster, for example after the Varnish servers restarted without
 * their VCL. The task raises each cluster's changeSeq so that it is not skipped as applied.
 * Servers whose active VCL is already current are skipped by the reload itself.
 */
export async function resyncAllClusters(deps: ChangeDeps): Promise<string[]> {
  const clusters = (await deps.config.list('cluster')).map((cluster) => cluster.id);
  if (clusters.length === 0) return [];
  await queueTask(deps, { id: deps.newId(), timestamp: deps.now().toISOString(), clusters, origin: 'retry' });
  return clusters;
}
