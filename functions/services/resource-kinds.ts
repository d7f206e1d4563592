import type { z } from 'zod';
import { ConflictError, ValidationError } from '../domain/errors.js';
import {
  type Backend,
  backendInput,
  type Cluster,
  type ClusterRecord,
  clusterInput,
  type Director,
  directorInput,
  type Server,
  serverInput,
} from '../domain/model.js';
import type { ConfigStore, EntityByKind, EntityKind } from '../ports.js';
import { datacenter, probe, route, timeProfile, vclTemplate } from './resource-kinds-settings.js';
import {
  checkClusterTemplate,
  requireExisting,
  requireExistingAll,
  requireUnused,
} from './resource-references.js';

/** Validation, presentation and references of one kind of resource. */
export interface KindSpec<K extends EntityKind> {
  schema: z.ZodType;
  /** Builds the stored entity from validated input. */
  toEntity(id: string, input: Record<string, unknown>): EntityByKind[K];
  /** The fields a client can write, used to merge a PATCH into the stored entity. */
  writable(entity: EntityByKind[K]): Record<string, unknown>;
  view(entity: EntityByKind[K]): object;
  /**
   * Throws ValidationError when the entity refers to something that does not exist or breaks a
   * rule that spans resources, and ConflictError when its name is taken.
   */
  checkReferences(config: ConfigStore, entity: EntityByKind[K]): Promise<void>;
  /** Clusters whose VCL or set of servers changes when this entity is written. */
  affectedClusters(config: ConfigStore, entity: EntityByKind[K]): Promise<string[]>;
  /** Clusters to reload when the entity is deleted. Throws ConflictError while something refers to it. */
  beforeDelete(config: ConfigStore, entity: EntityByKind[K]): Promise<string[]>;
}

const cluster: KindSpec<'cluster'> = {
  schema: clusterInput,
  toEntity: (id, input) => ({
    id,
    name: input.name as string,
    template: input.template as string | undefined,
    variables: input.variables as Record<string, string>,
    changeSeq: 0,
    appliedSeq: 0,
  }),
  writable: (entity) => ({ name: entity.name, template: entity.template, variables: entity.variables }),
  view: clusterView,
  checkReferences: (config, entity) => checkClusterTemplate(config, entity),
  // A cluster's name is not part of its VCL, but its template and variables are.
  affectedClusters: async (_config, entity) =>
    entity.template !== undefined || Object.keys(entity.variables ?? {}).length > 0 ? [entity.id] : [],
  async beforeDelete(config, entity) {
    const servers = (await config.list('server')).filter((server) => server.cluster === entity.id);
    const directors = (await config.list('director')).filter((director) =>
      director.clusters.includes(entity.id),
    );
    if (servers.length > 0 || directors.length > 0) {
      throw new ConflictError(
        `cluster ${entity.id} still has ${servers.length} servers and ${directors.length} directors; ` +
          'delete the servers and remove the cluster from the directors first',
      );
    }
    const routes = (await config.list('route')).filter((candidate) => candidate.clusters.includes(entity.id));
    requireUnused('cluster', entity.id, { routes: routes.length });
    return [];
  },
};

const server: KindSpec<'server'> = {
  schema: serverInput,
  toEntity: (id, input) => ({ id, ...(input as Omit<Server, 'id'>) }),
  writable: ({ id: _id, ...fields }) => fields,
  view: (entity) => entity,
  async checkReferences(config, entity) {
    await requireExisting(config, 'cluster', entity.cluster, 'cluster');
    await requireExistingAll(config, [['datacenter', entity.datacenter, 'datacenter']]);
  },
  // A new, moved or re-enabled server needs the cluster's VCL pushed to it.
  affectedClusters: async (_config, entity) => [entity.cluster],
  // The remaining servers keep the same VCL, so removing a server needs no reload.
  beforeDelete: async () => [],
};

const director: KindSpec<'director'> = {
  schema: directorInput,
  toEntity: (id, input) => ({ id, ...(input as Omit<Director, 'id'>) }),
  writable: ({ id: _id, ...fields }) => fields,
  view: (entity) => entity,
  async checkReferences(config, entity) {
    for (const [index, clusterId] of entity.clusters.entries()) {
      await requireExisting(config, 'cluster', clusterId, `clusters.${index}`);
    }
    await requireExistingAll(config, [
      ['probe', entity.probe, 'probe'],
      ['timeProfile', entity.timeProfile, 'timeProfile'],
    ]);
    await requireRoutesServed(config, entity);
  },
  affectedClusters: async (_config, entity) => entity.clusters,
  async beforeDelete(config, entity) {
    const backends = (await config.list('backend')).filter((backend) => backend.director === entity.id);
    if (backends.length > 0) {
      throw new ConflictError(
        `director ${entity.id} still has ${backends.length} backends; delete them first`,
      );
    }
    const routes = (await config.list('route')).filter((candidate) => candidate.director === entity.id);
    requireUnused('director', entity.id, { routes: routes.length });
    return entity.clusters;
  },
};

const backend: KindSpec<'backend'> = {
  schema: backendInput,
  toEntity: (id, input) => ({ id, ...(input as Omit<Backend, 'id'>) }),
  writable: ({ id: _id, ...fields }) => fields,
  view: (entity) => entity,
  async checkReferences(config, entity) {
    await requireExisting(config, 'director', entity.director, 'director');
    await requireExistingAll(config, [
      ['datacenter', entity.datacenter, 'datacenter'],
      ['probe', entity.probe, 'probe'],
      ['timeProfile', entity.timeProfile, 'timeProfile'],
    ]);
  },
  async affectedClusters(config, entity) {
    return (await config.get('director', entity.director))?.clusters ?? [];
  },
  async beforeDelete(config, entity) {
    return (await config.get('director', entity.director))?.clusters ?? [];
  },
};

const SPECS: { [K in EntityKind]: KindSpec<K> } = {
  cluster,
  server,
  director,
  backend,
  datacenter,
  probe,
  timeProfile,
  route,
  vclTemplate,
};

/**
 * The spec of every kind. `writable` never returns `version`: the store raises it on each update
 * to detect concurrent writes, and no client or rollback writes it.
 */
export const KINDS = Object.fromEntries(
  Object.entries(SPECS).map(([kind, spec]) => [
    kind,
    {
      ...spec,
      writable: (entity: never) => {
        const { version: _version, ...fields } = (
          spec.writable as (entity: never) => Record<string, unknown>
        )(entity);
        return fields;
      },
    },
  ]),
) as unknown as typeof SPECS;

/** Returns the API's view of a cluster, without its internal ordering counters. */
export function clusterView(record: ClusterRecord): Cluster {
  return {
    id: record.id,
    name: record.name,
    template: record.template,
    variables: record.variables ?? {},
    reloadTimestamp: record.reloadTimestamp,
    errorTimestamp: record.errorTimestamp,
    lastError: record.lastError,
  };
}

/** A route sends a cluster's requests to a director, so the director must keep serving that cluster. */
async function requireRoutesServed(config: ConfigStore, entity: Director) {
  const routes = (await config.list('route')).filter((candidate) => candidate.director === entity.id);
  const problems = routes.flatMap((candidate) =>
    candidate.clusters
      .filter((clusterId) => !entity.clusters.includes(clusterId))
      .map((clusterId) => ({
        field: 'clusters',
        message: `must include cluster ${clusterId}, which route ${candidate.name} (${candidate.id}) sends here; remove it from the route first`,
      })),
  );
  if (problems.length > 0) throw new ValidationError(problems);
}
