// Rolls a cluster back to the configuration of an earlier successful reload, as one new change.
//
// The snapshot's entities are written back: directors, backends, routes, the cluster's template
// and variables, and the datacenters, probes and time profiles it used. Resources shared with
// other clusters change for them too; their clusters are reloaded with this one. Resources added
// since then leave the cluster: directors and routes lose the cluster from their `clusters`,
// backends of restored directors are deleted, and datacenters, probes and time profiles stay, as
// other clusters may use them. Servers are not rolled back: they describe the fleet, and the VCL
// is rendered for today's servers.
import { z } from 'zod';
import { ChangePartlySavedError, ConflictError, NotFoundError, ValidationError } from '../domain/errors.js';
import type { ReloadSnapshot } from '../domain/history.js';
import type { ClusterConfig } from '../domain/model.js';
import { renderVcl } from '../domain/vcl.js';
import type { ConfigStore, EntityByKind, EntityKind } from '../ports.js';
import { type ChangeDeps, type ChangeResult, commitChange, type EntityWrite } from './changes.js';
import { loadClusterConfig } from './cluster-config.js';
import { overlayStore } from './compile-check.js';
import { actionOf, stableJson } from './history.js';
import { KINDS } from './resource-kinds.js';
import { parseInput } from './validation.js';

type ListField = 'directors' | 'backends' | 'datacenters' | 'probes' | 'timeProfiles' | 'routes';

/** Each list's kind, and the fate of an entity that the cluster has now but the snapshot lacks. */
const LIST_FIELDS: Record<ListField, { kind: EntityKind; added: 'detach' | 'delete' | 'keep' }> = {
  datacenters: { kind: 'datacenter', added: 'keep' },
  probes: { kind: 'probe', added: 'keep' },
  timeProfiles: { kind: 'timeProfile', added: 'keep' },
  directors: { kind: 'director', added: 'detach' },
  backends: { kind: 'backend', added: 'delete' },
  routes: { kind: 'route', added: 'detach' },
};

// Fails to compile when ClusterConfig gains a field that rollback does not handle yet.
const _everyFieldHandled: Record<
  Exclude<keyof ClusterConfig, ListField | 'cluster' | 'servers' | 'template'>,
  never
> = {};

const rollbackInput = z
  .strictObject({
    taskId: z.string().min(1).max(64).optional(),
    historyId: z.string().min(1).max(64).optional(),
  })
  .refine((input) => (input.taskId === undefined) !== (input.historyId === undefined), {
    message: 'give exactly one of taskId and historyId',
    path: ['taskId'],
  });

export interface RollbackView {
  cluster: string;
  /** The reload whose configuration the cluster got back. */
  snapshot: { seq: number; reloadedAt: string; taskIds: string[] };
  writes: { kind: string; id: string; action: 'create' | 'update' | 'delete' }[];
}

/** Handles `POST /v1/clusters/{id}/rollback` with `{ taskId }` or `{ historyId }`. */
export async function rollbackCluster(
  deps: ChangeDeps,
  clusterId: string,
  body: unknown,
): Promise<ChangeResult<RollbackView>> {
  const input = parseInput(rollbackInput, body);
  const current = await loadClusterConfig(deps.config, clusterId);
  if (!current) throw new NotFoundError(`cluster ${clusterId} not found`);

  const snapshot = await findTarget(deps, clusterId, input);
  const writes = await planRestore(deps.config, current, snapshot.config, clusterId);
  const candidate = overlayStore(deps.config, writes);
  await checkPlan(candidate, writes);
  await requireSameVcl(candidate, current, snapshot, clusterId);

  const resource: RollbackView = {
    cluster: clusterId,
    snapshot: { seq: snapshot.seq, reloadedAt: snapshot.reloadedAt, taskIds: snapshot.taskIds },
    writes: writes.map((write) => ({ kind: write.kind, id: write.id, action: actionOf(write) })),
  };
  if (writes.length === 0) return { resource };

  const clusters = await affectedClusters(deps.config, candidate, writes, clusterId);
  const rollback = { clusterId, snapshotSeq: snapshot.seq };
  return commitChange(deps, { clusters, writes, rollback }, async () => {
    await applyWrites(deps.config, writes);
    return resource;
  });
}

/** Returns the first successful reload of the cluster that contained the task's or the entry's change. */
async function findTarget(
  deps: ChangeDeps,
  clusterId: string,
  input: { taskId?: string; historyId?: string },
): Promise<ReloadSnapshot> {
  let seq: number | undefined;
  let field: string;
  if (input.historyId !== undefined) {
    field = 'historyId';
    const entry = await deps.history.getEntry(input.historyId);
    if (!entry) throw new NotFoundError(`history entry ${input.historyId} not found`);
    seq = entry.seqs?.[clusterId];
  } else {
    field = 'taskId';
    const task = await deps.tasks.getTask(input.taskId ?? '');
    if (!task)
      throw new NotFoundError(
        `task ${input.taskId} not found; tasks are kept for 30 days, history entries longer`,
      );
    seq = task.clusters[clusterId]?.seq;
  }
  if (seq === undefined) {
    throw new ValidationError([{ field, message: `did not reload cluster ${clusterId}` }]);
  }

  const snapshot = await deps.history.findSnapshot(clusterId, seq);
  if (!snapshot) {
    throw new ConflictError(`no successful reload of cluster ${clusterId} has applied this change yet`);
  }
  return snapshot;
}

async function planRestore(
  base: ConfigStore,
  current: ClusterConfig,
  target: ClusterConfig,
  clusterId: string,
): Promise<EntityWrite[]> {
  const writes: EntityWrite[] = [];
  const restore = async <K extends EntityKind>(kind: K, entity: EntityByKind[K]) => {
    const saved = await base.get(kind, entity.id);
    const after = withMembership(entity, saved, clusterId, true);
    if (!saved) writes.push({ kind, id: entity.id, after });
    else if (!sameFields(kind, saved, after)) writes.push({ kind, id: entity.id, before: saved, after });
  };

  for (const [field, { kind }] of Object.entries(LIST_FIELDS)) {
    for (const entity of target[field as ListField] ?? []) await restore(kind, entity as never);
  }
  if (target.template) await restore('vclTemplate', target.template);
  const record = await base.get('cluster', clusterId);
  if (record) {
    const { template, variables } = target.cluster;
    await restore('cluster', { ...record, template, variables: variables ?? {} });
  }

  for (const [field, { kind, added }] of Object.entries(LIST_FIELDS)) {
    if (added !== 'detach') continue;
    const restoredIds = new Set((target[field as ListField] ?? []).map((entity) => entity.id));
    for (const entity of current[field as ListField] ?? []) {
      if (!restoredIds.has(entity.id))
        writes.push({
          kind,
          id: entity.id,
          before: entity,
          after: withMembership(entity, entity, clusterId, false),
        });
    }
  }

  // Entities that are still in the cluster once the others are restored and detached are deleted.
  const candidate = await loadClusterConfig(overlayStore(base, writes), clusterId);
  for (const [field, { kind, added }] of Object.entries(LIST_FIELDS)) {
    if (added !== 'delete') continue;
    const restoredIds = new Set((target[field as ListField] ?? []).map((entity) => entity.id));
    for (const entity of candidate?.[field as ListField] ?? []) {
      if (!restoredIds.has(entity.id)) writes.push({ kind, id: entity.id, before: entity });
    }
  }
  return writes;
}

/** Sets or clears the cluster in a `clusters` list, keeping the other clusters as they are saved now. */
function withMembership<T extends { id: string }>(
  entity: T,
  saved: unknown,
  clusterId: string,
  member: boolean,
): T {
  if (!Array.isArray((entity as { clusters?: unknown }).clusters)) return entity;
  const others = ((saved as { clusters?: string[] } | undefined)?.clusters ?? []).filter(
    (id) => id !== clusterId,
  );
  return { ...entity, clusters: member ? [...others, clusterId].sort() : others };
}

/** Runs the checks that a change through the API runs, against the configuration after the rollback. */
async function checkPlan(candidate: ConfigStore, writes: EntityWrite[]) {
  for (const write of writes) {
    const spec = KINDS[write.kind];
    if (write.after === undefined) {
      await spec.beforeDelete(candidate, write.before as never);
      continue;
    }
    await spec.checkReferences(candidate, write.after as never);

    const name = (write.after as { name?: unknown }).name;
    const others = typeof name === 'string' ? await candidate.list(write.kind) : [];
    const owner = others.find(
      (other) => (other as { name?: unknown }).name === name && other.id !== write.id,
    );
    if (owner) {
      throw new ConflictError(
        `${write.kind} ${write.id} cannot get its name ${String(name)} back: ${write.kind} ${owner.id} has it; rename that one first`,
      );
    }
  }
}

/** Throws ConflictError unless the candidate renders the snapshot's VCL for every server of the cluster now. */
async function requireSameVcl(
  candidate: ConfigStore,
  current: ClusterConfig,
  snapshot: ReloadSnapshot,
  clusterId: string,
) {
  const restored = await loadClusterConfig(candidate, clusterId);
  const expected = expectedConfig(current, snapshot.config);
  for (const server of current.servers) {
    if (restored && renderVcl(restored, server) === renderVcl(expected, server)) continue;
    throw new ConflictError(
      `rolling back to the reload with seq ${snapshot.seq} would not reproduce its VCL for server ${server.id}; nothing was saved`,
    );
  }
}

/** Returns the snapshot's configuration with today's servers, cluster name and the shared resources that rollback keeps. */
function expectedConfig(current: ClusterConfig, target: ClusterConfig): ClusterConfig {
  const expected: ClusterConfig = {
    ...target,
    cluster: { ...current.cluster, template: target.cluster.template, variables: target.cluster.variables },
    servers: current.servers,
  };
  for (const [field, { added }] of Object.entries(LIST_FIELDS)) {
    if (added !== 'keep') continue;
    const restored = (target[field as ListField] ?? []) as { id: string }[];
    const ids = new Set(restored.map((entity) => entity.id));
    const newer = ((current[field as ListField] ?? []) as { id: string }[]).filter(
      (entity) => !ids.has(entity.id),
    );
    (expected as unknown as Record<string, unknown>)[field] = [...restored, ...newer];
  }
  return expected;
}

async function affectedClusters(
  base: ConfigStore,
  candidate: ConfigStore,
  writes: EntityWrite[],
  clusterId: string,
) {
  const clusters = new Set([clusterId]);
  for (const write of writes) {
    const spec = KINDS[write.kind];
    if (write.before)
      for (const id of await spec.affectedClusters(base, write.before as never)) clusters.add(id);
    if (write.after)
      for (const id of await spec.affectedClusters(candidate, write.after as never)) clusters.add(id);
  }
  return clusters;
}

/** Writes creates and updates first and deletes last, so a stop halfway leaves no dangling reference. */
async function applyWrites(config: ConfigStore, writes: EntityWrite[]) {
  const ordered = [
    ...writes.filter((write) => write.after),
    ...writes.filter((write) => !write.after).reverse(),
  ];
  for (const [index, write] of ordered.entries()) {
    try {
      if (!write.before) await config.create(write.kind, write.after as never);
      else if (!write.after) await config.remove(write.kind, write.before as never);
      else await config.update(write.kind, write.before as never, changedFields(write) as never);
    } catch (error) {
      if (index === 0) throw error;
      throw new ChangePartlySavedError(
        `the rollback stopped after ${index} of ${ordered.length} writes (${(error as Error).message}); ` +
          'the saved writes are reloaded, so repeat the rollback to finish it',
      );
    }
  }
}

/** Returns every writable field of the restored entity; a field it lacks is written as undefined, which removes it. */
function changedFields(write: EntityWrite): Record<string, unknown> {
  const spec = KINDS[write.kind];
  const before = spec.writable(write.before as never);
  const after = spec.writable(write.after as never);
  return Object.fromEntries(Object.keys({ ...before, ...after }).map((field) => [field, after[field]]));
}

function sameFields<K extends EntityKind>(kind: K, a: EntityByKind[K], b: EntityByKind[K]): boolean {
  const spec = KINDS[kind];
  return stableJson(spec.writable(a as never)) === stableJson(spec.writable(b as never));
}
