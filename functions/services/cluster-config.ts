import type { ClusterConfig } from '../domain/model.js';
import type { ConfigStore } from '../ports.js';
import { clusterView } from './resource-kinds.js';

/**
 * Reads everything a cluster's VCL is rendered from. Every read is strongly consistent, so the
 * result contains each change saved before the call started.
 */
export async function loadClusterConfig(
  config: ConfigStore,
  clusterId: string,
): Promise<ClusterConfig | undefined> {
  const record = await config.get('cluster', clusterId);
  if (!record) return undefined;

  const [servers, directors, backends, datacenters, probes, timeProfiles, routes, template] =
    await Promise.all([
      config.list('server'),
      config.list('director'),
      config.list('backend'),
      config.list('datacenter'),
      config.list('probe'),
      config.list('timeProfile'),
      config.list('route'),
      record.template === undefined ? undefined : config.get('vclTemplate', record.template),
    ]);
  const clusterDirectors = directors.filter((director) => director.clusters.includes(clusterId));
  const directorIds = new Set(clusterDirectors.map((director) => director.id));

  return {
    cluster: clusterView(record),
    servers: servers.filter((server) => server.cluster === clusterId),
    directors: clusterDirectors,
    backends: backends.filter((backend) => directorIds.has(backend.director)),
    datacenters,
    probes,
    timeProfiles,
    routes: routes.filter((route) => route.clusters.includes(clusterId)),
    template,
  };
}
