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

/** Validation, presentation and references of one kind of resource. */
export interface KindSpec<K extends EntityKind> {
  schema: z.ZodType;
  /** Builds the stored entity from validated input. */
  toEntity(id: string, input: Record<string, unknown>): EntityByKind[K];
  /** The fields a client can write, used to merge a PATCH into the stored entity. */
  writable(entity: EntityByKind[K]): Record<string, unknown>;
  view(entity: EntityByKind[K]): object;
  /** Throws ValidationError when the entity refers to something that does not exist. */
  checkReferences(config: ConfigStore, entity: EntityByKind[K]): Promise<void>;
  /** Clusters whose VCL or set of servers changes when this entity is written. */
  affectedClusters(config: ConfigStore, entity: EntityByKind[K]): Promise<string[]>;
  /** Clusters to reload when the entity is deleted. Throws ConflictError while something refers to it. */
  beforeDelete(config: ConfigStore, entity: EntityByKind[K]): Promise<string[]>;
}

const cluster: KindSpec<'cluster'> = {
  schema: clusterInput,
  toEntity: (id, input) => ({ id, name: input.name as string, changeSeq: 0, appliedSeq: 0 }),
  writable: (entity) => ({ name: entity.name }),
  view: clusterView,
  checkReferences: async () => {},
  // A cluster's name is not part of its VCL, and a new cluster has no servers yet.
  affectedClusters: async () => [],
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
  },
  affectedClusters: async (_config, entity) => entity.clusters,
  async beforeDelete(config, entity) {
    const backends = (await config.list('backend')).filter((backend) => backend.director === entity.id);
    if (backends.length > 0) {
      throw new ConflictError(
        `director ${entity.id} still has ${backends.length} backends; delete them first`,
      );
    }
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
  },
  async affectedClusters(config, entity) {
    return (await config.get('director', entity.director))?.clusters ?? [];
  },
  async beforeDelete(config, entity) {
    return (await config.get('director', entity.director))?.clusters ?? [];
  },
};

export const KINDS: { [K in EntityKind]: KindSpec<K> } = { cluster, server, director, backend };

/** Returns the API's view of a cluster, without its internal ordering counters. */
export function clusterView(record: ClusterRecord): Cluster {
  return {
    id: record.id,
    name: record.name,
    reloadTimestamp: record.reloadTimestamp,
    errorTimestamp: record.errorTimestamp,
    lastError: record.lastError,
  };
}

async function requireExisting(config: ConfigStore, kind: EntityKind, id: string, field: string) {
  if (await config.get(kind, id)) return;
  throw new ValidationError([{ field, message: `${kind} ${id} does not exist` }]);
}
