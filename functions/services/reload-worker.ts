import { planBatch } from '../domain/coverage.js';
import { VaasError } from '../domain/errors.js';
import { reloadCluster } from '../domain/reload-cluster.js';
import { renderVcl } from '../domain/vcl.js';
import type { ReloadObserver, TaskMessage, VarnishTransport } from '../ports.js';
import { logger } from '../shared/logger.js';
import type { ChangeDeps } from './changes.js';
import { loadClusterConfig } from './cluster-config.js';
import { recordReloadSnapshot, rememberingRenderer } from './history.js';

export interface ReloadDeps extends ChangeDeps {
  transport: VarnishTransport;
  observer?: ReloadObserver;
}

/**
 * Processes one cluster's queued task parts, oldest first. Parts that the cluster applied
 * already succeed at once; all newer parts share one reload that renders the configuration as
 * saved now. The queue delivers a cluster's messages one batch at a time, so two reloads of a
 * cluster never overlap.
 *
 * A reload that Varnish rejects is recorded on the cluster and its tasks, and not thrown: the
 * reconciler retries it later. Other errors (storage, bugs) are thrown, so the queue redelivers.
 */
export async function processClusterBatch(
  deps: ReloadDeps,
  clusterId: string,
  parts: TaskMessage[],
): Promise<void> {
  const log = logger.createChild({ persistentKeys: { clusterId } });
  const finishedAt = () => deps.now().toISOString();

  // changeSeq is read before the configuration: every change up to it is saved, so the reload
  // below includes all of them and may mark them applied.
  const record = await deps.config.get('cluster', clusterId);
  if (!record) return finishDeletedCluster(deps, clusterId, parts);

  const { covered, pending } = planBatch(parts, record.appliedSeq);
  for (const part of covered) await markLive(deps, part, finishedAt());
  if (covered.length > 0) {
    deps.observer?.skipped(clusterId, covered.length);
    log.info('tasks already applied; skipped', {
      taskIds: covered.map((part) => part.taskId),
      appliedSeq: record.appliedSeq,
    });
  }
  if (pending.length === 0) return;

  for (const part of pending) await deps.tasks.markTaskRunning(part.taskId, clusterId);
  const targetSeq = record.changeSeq;
  const newest = pending.at(-1) as TaskMessage;
  const started = Date.now();
  const config = await loadClusterConfig(deps.config, clusterId);
  if (!config) return finishDeletedCluster(deps, clusterId, pending);

  const renderer = rememberingRenderer((server) => renderVcl(config, server));
  try {
    const report = await reloadCluster({
      servers: config.servers,
      renderFor: renderer.renderFor,
      transport: deps.transport,
      log: {
        info: (message, attributes = {}) => log.info(message, attributes),
        warn: (message, attributes = {}) => log.warn(message, attributes),
      },
    });

    // A snapshot that cannot be stored fails the batch, so the queue redelivers it and the next
    // attempt, finding every server current, stores it.
    await recordReloadSnapshot(deps.history, {
      clusterId,
      seq: targetSeq,
      taskIds: pending.map((part) => part.taskId),
      config,
      results: report.servers,
      rendered: renderer.rendered,
      reloadedAt: finishedAt(),
    });
    await deps.clusterState.recordApplied(clusterId, targetSeq, finishedAt());
    for (const part of pending) await markLive(deps, part, finishedAt());
    deps.observer?.reloaded(clusterId, Date.now() - started, true);
    log.info('cluster reloaded', {
      taskId: newest.taskId,
      appliedSeq: targetSeq,
      durationMs: Date.now() - started,
      report,
    });
  } catch (error) {
    if (!(error instanceof VaasError)) throw error;
    deps.observer?.reloaded(clusterId, Date.now() - started, false);
    log.error('cluster reload failed', { taskId: newest.taskId, error });

    await deps.clusterState.recordError(clusterId, {
      taskTimestamp: newest.timestamp,
      message: error.message,
      attemptAt: finishedAt(),
    });
    for (const part of pending) {
      await deps.tasks.finishTask(part.taskId, clusterId, {
        status: 'failed',
        error: error.message,
        finishedAt: finishedAt(),
      });
    }
  }
}

async function markLive(deps: ReloadDeps, part: TaskMessage, finishedAt: string) {
  await deps.tasks.finishTask(part.taskId, part.clusterId, { status: 'succeeded', finishedAt });
  await deps.clusterState.recordTaskLive(part.clusterId, part.seq, part.timestamp);
}

/** Finishes the parts of a deleted cluster: it has no servers, so nothing is left to reload. */
async function finishDeletedCluster(deps: ReloadDeps, clusterId: string, parts: TaskMessage[]) {
  logger.info('cluster deleted; nothing to reload', { clusterId, taskIds: parts.map((part) => part.taskId) });
  for (const part of parts) {
    await deps.tasks.finishTask(part.taskId, clusterId, {
      status: 'succeeded',
      finishedAt: deps.now().toISOString(),
    });
  }
}
