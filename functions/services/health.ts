// Backend health per server, from `backend.list -j` through each server's agent. The VCL names
// backends by generated identifiers, so the configuration that the active VCL was rendered from
// (the saved one, or the snapshot of the last successful reload) maps them back to vaas backends.
import { NotFoundError } from '../domain/errors.js';
import type { ReloadSnapshot } from '../domain/history.js';
import type { Backend, ClusterConfig, Director, Server } from '../domain/model.js';
import { hashFromVclName, renderVcl, vclBackendIdentifiers, vclContentHash } from '../domain/vcl.js';
import type { ConfigStore, HistoryStore, VarnishBackendHealth, VarnishTransport } from '../ports.js';
import { loadClusterConfig } from './cluster-config.js';

export interface BackendServerHealth {
  server: string;
  cluster: string;
  /** null when the health is unknown; `error` contains the reason. */
  healthy: boolean | null;
  /** `healthy`, `sick`, or `probe` when the probe decides, as varnishd reports it. */
  adminHealth?: string;
  /** Good probes among the last `window`; absent without a probe. */
  probe?: { good: number; window: number };
  lastChange?: string;
  /** The backend's identifier in the active VCL. */
  vclBackend?: string;
  error?: string;
}

interface HealthDeps {
  config: ConfigStore;
  history: HistoryStore;
  transport?: VarnishTransport;
}

/** The report of one server, with the identifiers of its active VCL's backends. */
interface ServerReport {
  server: Server;
  cluster: string;
  identifiers?: Map<string, string>;
  entries?: Map<string, VarnishBackendHealth>;
  error?: string;
}

/** `GET /v1/backends/{id}/health`: the backend's health on each enabled server of its director's clusters. */
export async function backendHealth(deps: HealthDeps, backendId: string) {
  const backend = await deps.config.get('backend', backendId);
  if (!backend) throw new NotFoundError(`backend ${backendId} not found`);
  const director = await deps.config.get('director', backend.director);

  const reports = await collectReports(deps, director?.clusters ?? []);
  return { backend: backend.id, director: backend.director, health: healthOf(backend, reports) };
}

/** `GET /v1/directors/{id}/health`: the health of each of the director's backends on each server. */
export async function directorHealth(deps: HealthDeps, directorId: string) {
  const director = await deps.config.get('director', directorId);
  if (!director) throw new NotFoundError(`director ${directorId} not found`);

  const backends = (await deps.config.list('backend')).filter((backend) => backend.director === director.id);
  const reports = await collectReports(deps, director.clusters);
  return {
    director: director.id,
    backends: backends.map((backend) => ({
      backend: backend.id,
      address: backend.address,
      port: backend.port,
      health: healthOf(backend, reports),
    })),
  };
}

async function collectReports(deps: HealthDeps, clusterIds: Director['clusters']): Promise<ServerReport[]> {
  const perCluster = await Promise.all(
    clusterIds.map(async (clusterId) => {
      const config = await loadClusterConfig(deps.config, clusterId);
      if (!config) return [];
      const snapshot = await deps.history.latestSnapshot(clusterId);
      const servers = config.servers.filter((server) => server.status !== 'disabled');
      return Promise.all(servers.map((server) => reportOf(deps.transport, config, snapshot, server)));
    }),
  );
  return perCluster.flat();
}

async function reportOf(
  transport: VarnishTransport | undefined,
  config: ClusterConfig,
  snapshot: ReloadSnapshot | undefined,
  server: Server,
): Promise<ServerReport> {
  const report: ServerReport = { server, cluster: config.cluster.id };
  const agent = transport?.(server);
  if (!agent?.backendHealth) {
    report.error = 'the transport to this server cannot read backend health';
    return report;
  }

  try {
    const [vcls, entries] = await Promise.all([agent.listVcls(), agent.backendHealth()]);
    const active = vcls.find((vcl) => vcl.status === 'active')?.name ?? '';
    const source = sourceConfig(config, snapshot, server, hashFromVclName(active));
    if (!source) {
      report.error = `the active VCL ${active} was not rendered from the saved configuration or the last reload; compare them with GET /v1/clusters/${config.cluster.id}/vcl`;
      return report;
    }

    const identifiers = vclBackendIdentifiers(source, server);
    report.identifiers = new Map(identifiers.map((item) => [item.backendId, item.identifier]));
    report.entries = new Map(
      entries.filter((entry) => entry.vcl === active).map((entry) => [entry.backend, entry]),
    );
  } catch (error) {
    report.error = error instanceof Error ? error.message : String(error);
  }
  return report;
}

/** Returns the configuration whose VCL for the server has the content hash that the active VCL's name carries. */
function sourceConfig(
  config: ClusterConfig,
  snapshot: ReloadSnapshot | undefined,
  server: Server,
  activeHash: string | undefined,
): ClusterConfig | undefined {
  if (activeHash === undefined) return undefined;
  if (vclContentHash(renderVcl(config, server)).startsWith(activeHash)) return config;

  const applied = snapshot?.servers.find((entry) => entry.serverId === server.id);
  return snapshot && applied?.vclHash.startsWith(activeHash) ? snapshot.config : undefined;
}

function healthOf(backend: Backend, reports: ServerReport[]): BackendServerHealth[] {
  return reports.map((report) => {
    const health: BackendServerHealth = { server: report.server.id, cluster: report.cluster, healthy: null };
    if (report.error !== undefined) return { ...health, error: report.error };

    const identifier = report.identifiers?.get(backend.id);
    if (identifier === undefined) {
      return {
        ...health,
        error: 'not in the active VCL: the backend is disabled, has weight 0 or is not for this server',
      };
    }
    const entry = report.entries?.get(identifier);
    if (!entry) return { ...health, vclBackend: identifier, error: 'varnishd did not list this backend' };

    return {
      ...health,
      healthy: entry.healthy,
      adminHealth: entry.adminHealth,
      probe: entry.probe,
      lastChange: entry.lastChange,
      vclBackend: identifier,
    };
  });
}
