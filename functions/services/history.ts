// Change history: building the entries of a change, recovering them after a crash, listing them,
// and recording the snapshot of each successful reload.
import type { HistoryAction, HistoryEntry, HistoryPage, ReloadSnapshot } from '../domain/history.js';
import type { ClusterConfig, Server, Task } from '../domain/model.js';
import type { ServerReloadResult } from '../domain/reload-cluster.js';
import { vclContentHash } from '../domain/vcl.js';
import type { EntityByKind, EntityKind, HistoryStore, OutboxEntry } from '../ports.js';
import { logger } from '../shared/logger.js';
import type { ChangeDeps, ChangeRequest, EntityWrite } from './changes.js';
import { KINDS } from './resource-kinds.js';

/** Returns one entry per write, without the task; withTaskSeqs adds it once the task is queued. */
export function historyEntriesFor(
  deps: Pick<ChangeDeps, 'newId' | 'caller'>,
  change: ChangeRequest & { clusters: string[] },
  at: string,
): HistoryEntry[] {
  return change.writes.map((write) => {
    const entry: HistoryEntry = {
      id: deps.newId(),
      at,
      caller: deps.caller ?? 'system',
      kind: write.kind,
      resourceId: write.id,
      action: actionOf(write),
      clusters: change.clusters,
    };
    if (write.before !== undefined) entry.before = recordedFields(write.kind, write.before);
    if (write.after !== undefined) entry.after = recordedFields(write.kind, write.after);
    if (change.rollback) entry.rollback = change.rollback;
    return entry;
  });
}

/** Adds the task id and each cluster's seq in the task. */
export function withTaskSeqs(entries: HistoryEntry[], task: Task | undefined): HistoryEntry[] {
  if (!task) return entries;
  const seqs = Object.fromEntries(
    Object.entries(task.clusters).map(([clusterId, part]) => [clusterId, part.seq]),
  );
  return entries.map((entry) => ({ ...entry, taskId: task.id, seqs }));
}

/**
 * Writes the history entries of an outbox entry that a crashed request left behind. An entry is
 * written only when the store shows its write (the resource has the recorded fields, or is gone
 * after a delete): the request may have stopped before the save. An entry whose resource changed
 * again since then is logged instead of written, because nothing shows that the save happened.
 */
export async function recoverHistory(
  deps: Pick<ChangeDeps, 'config' | 'history'>,
  outbox: OutboxEntry,
  task: Task | undefined,
): Promise<void> {
  const confirmed: HistoryEntry[] = [];
  for (const entry of outbox.changes ?? []) {
    const kind = entry.kind as EntityKind;
    const current = await deps.config.get(kind, entry.resourceId);
    const saved =
      entry.after === undefined
        ? current === undefined
        : current !== undefined && sameFields(recordedFields(kind, current), entry.after);

    if (saved) confirmed.push(entry);
    else
      logger.warn('history entry not recovered: the store does not show its write', {
        taskId: outbox.taskId,
        entry,
      });
  }
  if (confirmed.length > 0) await deps.history.putEntries(withTaskSeqs(confirmed, task));
}

/** Lists a resource's history, or for kind `cluster` every change that affected the cluster. */
export function listHistory(history: HistoryStore, kind: EntityKind, id: string, page: HistoryPage) {
  return kind === 'cluster' ? history.listForCluster(id, page) : history.listForResource(kind, id, page);
}

/** Stores what a successful reload rendered, so that the cluster can be rolled back to it. */
export async function recordReloadSnapshot(
  history: HistoryStore,
  reload: {
    clusterId: string;
    seq: number;
    taskIds: string[];
    config: ClusterConfig;
    results: ServerReloadResult[];
    rendered: Map<string, string>;
    reloadedAt: string;
  },
): Promise<void> {
  const servers: ReloadSnapshot['servers'] = [];
  for (const result of reload.results) {
    const vcl = reload.rendered.get(result.serverId);
    const runsIt = result.status === 'applied' || result.reason === 'unchanged';
    if (!runsIt || vcl === undefined || result.vclName === undefined) continue;
    servers.push({ serverId: result.serverId, vclName: result.vclName, vclHash: vclContentHash(vcl) });
  }

  await history.putSnapshot({
    clusterId: reload.clusterId,
    seq: reload.seq,
    reloadedAt: reload.reloadedAt,
    taskIds: reload.taskIds,
    servers,
    config: reload.config,
  });
}

/** Returns a renderer that remembers what it rendered for each server. */
export function rememberingRenderer(render: (server: Server) => string) {
  const rendered = new Map<string, string>();
  return {
    rendered,
    renderFor(server: Server): string {
      const vcl = render(server);
      rendered.set(server.id, vcl);
      return vcl;
    },
  };
}

/** Returns the fields that history records: the id and every field a client can write, without unset ones. */
function recordedFields<K extends EntityKind>(kind: K, entity: EntityByKind[K]): Record<string, unknown> {
  const fields = { id: entity.id, ...KINDS[kind].writable(entity as never) };
  return JSON.parse(JSON.stringify(fields)) as Record<string, unknown>;
}

function sameFields(a: Record<string, unknown>, b: Record<string, unknown>): boolean {
  return stableJson(a) === stableJson(b);
}

/** JSON with object keys sorted, so that equal values compare equal whatever their key order. */
export function stableJson(value: unknown): string {
  return JSON.stringify(value, (_key, item: unknown) => {
    if (!item || typeof item !== 'object' || Array.isArray(item)) return item;
    return Object.fromEntries(Object.entries(item).sort(([a], [b]) => compareStrings(a, b)));
  });
}

function compareStrings(a: string, b: string): number {
  if (a === b) return 0;
  return a < b ? -1 : 1;
}

export function actionOf(write: EntityWrite): HistoryAction {
  if (write.before === undefined) return 'create';
  return write.after === undefined ? 'delete' : 'update';
}
