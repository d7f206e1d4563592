// Kind specs of the resources that shape VCL beside clusters, servers, directors and backends:
// datacenters, probes, time profiles, routes and VCL templates.
import { ValidationError } from '../domain/errors.js';
import {
  type Datacenter,
  datacenterInput,
  type Probe,
  probeInput,
  type Route,
  routeInput,
  type TimeProfile,
  timeProfileInput,
  type VclTemplate,
  vclTemplateInput,
} from '../domain/model.js';
import type { KindSpec } from './resource-kinds.js';
import {
  checkTemplateUsers,
  clustersReferencing,
  referencesTo,
  requireExisting,
  requireUniqueName,
  requireUnused,
} from './resource-references.js';

export const datacenter: KindSpec<'datacenter'> = {
  schema: datacenterInput,
  toEntity: (id, input) => ({ id, ...(input as Omit<Datacenter, 'id'>) }),
  writable: ({ id: _id, ...fields }) => fields,
  view: (entity) => entity,
  checkReferences: (config, entity) => requireUniqueName(config, 'datacenter', entity),
  // The name is part of the identifiers of datacenter groups.
  affectedClusters: (config, entity) => clustersReferencing(config, 'datacenter', entity.id),
  async beforeDelete(config, entity) {
    const references = await referencesTo(config, 'datacenter', entity.id);
    requireUnused('datacenter', entity.id, {
      servers: references.servers.length,
      backends: references.backends.length,
    });
    return [];
  },
};

export const probe: KindSpec<'probe'> = {
  schema: probeInput,
  toEntity: (id, input) => ({ id, ...(input as Omit<Probe, 'id'>) }),
  writable: ({ id: _id, ...fields }) => fields,
  view: (entity) => entity,
  checkReferences: (config, entity) => requireUniqueName(config, 'probe', entity),
  affectedClusters: (config, entity) => clustersReferencing(config, 'probe', entity.id),
  async beforeDelete(config, entity) {
    const references = await referencesTo(config, 'probe', entity.id);
    requireUnused('probe', entity.id, {
      directors: references.directors.length,
      backends: references.backends.length,
    });
    return [];
  },
};

export const timeProfile: KindSpec<'timeProfile'> = {
  schema: timeProfileInput,
  toEntity: (id, input) => ({ id, ...(input as Omit<TimeProfile, 'id'>) }),
  writable: ({ id: _id, ...fields }) => fields,
  view: (entity) => entity,
  checkReferences: (config, entity) => requireUniqueName(config, 'timeProfile', entity),
  affectedClusters: (config, entity) => clustersReferencing(config, 'timeProfile', entity.id),
  async beforeDelete(config, entity) {
    const references = await referencesTo(config, 'timeProfile', entity.id);
    requireUnused('timeProfile', entity.id, {
      directors: references.directors.length,
      backends: references.backends.length,
    });
    return [];
  },
};

export const route: KindSpec<'route'> = {
  schema: routeInput,
  toEntity: (id, input) => ({ id, ...(input as Omit<Route, 'id'>) }),
  writable: ({ id: _id, ...fields }) => fields,
  view: (entity) => entity,
  async checkReferences(config, entity) {
    await requireUniqueName(config, 'route', entity);
    for (const [index, clusterId] of entity.clusters.entries()) {
      await requireExisting(config, 'cluster', clusterId, `clusters.${index}`);
    }
    const target = await config.get('director', entity.director);
    if (!target) {
      throw new ValidationError([
        { field: 'director', message: `director ${entity.director} does not exist` },
      ]);
    }
    const problems = entity.clusters
      .map((clusterId, index) => ({ clusterId, index }))
      .filter(({ clusterId }) => !target.clusters.includes(clusterId))
      .map(({ clusterId, index }) => ({
        field: `clusters.${index}`,
        message: `director ${target.name} (${target.id}) does not serve cluster ${clusterId}; add the cluster to the director first`,
      }));
    if (problems.length > 0) throw new ValidationError(problems);
  },
  affectedClusters: async (_config, entity) => entity.clusters,
  beforeDelete: async (_config, entity) => entity.clusters,
};

export const vclTemplate: KindSpec<'vclTemplate'> = {
  schema: vclTemplateInput,
  toEntity: (id, input) => ({ id, ...(input as Omit<VclTemplate, 'id'>) }),
  writable: ({ id: _id, ...fields }) => fields,
  view: (entity) => entity,
  async checkReferences(config, entity) {
    await requireUniqueName(config, 'vclTemplate', entity);
    await checkTemplateUsers(config, entity);
  },
  async affectedClusters(config, entity) {
    const clusters = await config.list('cluster');
    return clusters.filter((candidate) => candidate.template === entity.id).map((candidate) => candidate.id);
  },
  async beforeDelete(config, entity) {
    const clusters = (await config.list('cluster')).filter((candidate) => candidate.template === entity.id);
    requireUnused('vclTemplate', entity.id, { clusters: clusters.length });
    return [];
  },
};
