// Preview of a cluster's VCL: what each server would get now, how that differs from the VCL
// active on the server, and whether the active VCL is still the one vaas applied.
import { NotFoundError, ValidationError } from '../domain/errors.js';
import type { ReloadSnapshot } from '../domain/history.js';
import type { Server } from '../domain/model.js';
import { renderVcl, vclContentHash } from '../domain/vcl.js';
import type { ConfigStore, HistoryStore, VarnishTransport } from '../ports.js';
import { loadClusterConfig } from './cluster-config.js';
import { unifiedDiff } from './vcl-diff.js';

export interface ServerPreview {
  server: string;
  address: string;
  port: number;
  status: Server['status'];
  /** The VCL rendered for the server from the saved configuration. */
  vcl: string;
  vclHash: string;
  /** The server's active VCL; null when the agent could not be asked. */
  active: { name: string; vclHash: string } | null;
  /** The VCL that the last successful reload of the cluster left on the server; null when none did. */
  applied: { vclName: string; vclHash: string; seq: number; reloadedAt: string } | null;
  /** Unified diff from the active VCL to the rendered one; empty when equal, null when unknown. */
  diff: string | null;
  /** True when the active VCL is not the one vaas applied last (or, before any reload, not the rendered one). */
  outdated: boolean | null;
  /** The reason that `active` is null. */
  error?: string;
}

interface PreviewDeps {
  config: ConfigStore;
  history: HistoryStore;
  transport?: VarnishTransport;
}

/** Renders the VCL of one server, the response of `GET /v1/clusters/{id}/vcl?server=`. */
export async function renderServerVcl(config: ConfigStore, clusterId: string, serverId: string) {
  const clusterConfig = await loadClusterConfig(config, clusterId);
  if (!clusterConfig) throw new NotFoundError(`cluster ${clusterId} not found`);
  if (serverId === '') throw new ValidationError([{ field: 'server', message: 'must be a server id' }]);

  const server = clusterConfig.servers.find((candidate) => candidate.id === serverId);
  if (!server) throw new NotFoundError(`server ${serverId} is not in cluster ${clusterId}`);
  return { cluster: clusterId, server: serverId, vcl: renderVcl(clusterConfig, server) };
}

/** Previews every server of a cluster; agents are asked in parallel and a failure is reported per server. */
export async function previewClusterVcl(deps: PreviewDeps, clusterId: string) {
  const config = await loadClusterConfig(deps.config, clusterId);
  if (!config) throw new NotFoundError(`cluster ${clusterId} not found`);

  const snapshot = await deps.history.latestSnapshot(clusterId);
  const servers = await Promise.all(
    config.servers.map((server) =>
      previewServer(deps.transport, server, renderVcl(config, server), snapshot),
    ),
  );
  return { cluster: clusterId, servers };
}

async function previewServer(
  transport: VarnishTransport | undefined,
  server: Server,
  vcl: string,
  snapshot: ReloadSnapshot | undefined,
): Promise<ServerPreview> {
  const vclHash = vclContentHash(vcl);
  const applied = snapshot?.servers.find((entry) => entry.serverId === server.id);
  const preview: ServerPreview = {
    server: server.id,
    address: server.address,
    port: server.port,
    status: server.status,
    vcl,
    vclHash,
    active: null,
    applied:
      applied && snapshot
        ? { ...withoutServerId(applied), seq: snapshot.seq, reloadedAt: snapshot.reloadedAt }
        : null,
    diff: null,
    outdated: null,
  };

  const agent = transport?.(server);
  if (!agent?.activeVcl) {
    preview.error = 'the transport to this server cannot read the active VCL';
    return preview;
  }

  try {
    const active = await agent.activeVcl();
    const activeHash = vclContentHash(active.source);
    preview.active = { name: active.name, vclHash: activeHash };
    preview.diff = unifiedDiff(active.source, vcl, { from: `active/${active.name}`, to: 'rendered' });
    preview.outdated = activeHash !== (applied?.vclHash ?? vclHash);
  } catch (error) {
    preview.error = error instanceof Error ? error.message : String(error);
  }
  return preview;
}

function withoutServerId(entry: ReloadSnapshot['servers'][number]) {
  return { vclName: entry.vclName, vclHash: entry.vclHash };
}
