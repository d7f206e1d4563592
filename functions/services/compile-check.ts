// Compiles the VCL that a change would produce, before the change is saved. The candidate
// configuration is the saved one with the change's writes laid over it. It is rendered for each
// server of each affected cluster, and every distinct VCL is compiled on a server of that cluster.
import { randomBytes } from 'node:crypto';
import { parseCompilerOutput } from '../domain/compiler-output.js';
import {
  ChangeDoesNotCompileError,
  ServiceUnavailableError,
  VarnishUnavailableError,
  VclCompileError,
} from '../domain/errors.js';
import type { Server } from '../domain/model.js';
import { renderVcl, vclContentHash } from '../domain/vcl.js';
import type { ConfigStore, EntityByKind, EntityKind, VarnishAgent, VarnishTransport } from '../ports.js';
import { logger } from '../shared/logger.js';
import type { ChangeDeps, EntityWrite } from './changes.js';
import { loadClusterConfig } from './cluster-config.js';

/**
 * True when a write changes VCL code rather than values that the model validates in full. Code
 * comes from templates and their blocks, routes and their conditions, directors and their route
 * expressions, and a cluster's template and variables. Route expressions need the check because
 * varnishd's PCRE2 rejects some patterns that JavaScript accepts. Deletes are not checked.
 */
export function needsCompileCheck(write: EntityWrite): boolean {
  if (write.after === undefined) return false;

  switch (write.kind) {
    case 'vclTemplate':
    case 'route':
    case 'director':
      return true;
    case 'cluster': {
      const before = write.before as EntityByKind['cluster'] | undefined;
      const after = write.after as EntityByKind['cluster'];
      return (
        before?.template !== after.template ||
        JSON.stringify(before?.variables ?? {}) !== JSON.stringify(after.variables ?? {})
      );
    }
    default:
      return false;
  }
}

/**
 * Throws ChangeDoesNotCompileError (422) when a VCL rendered from the candidate configuration does
 * not compile, and ServiceUnavailableError (503) when no server of an affected cluster could run
 * the compiler. A cluster without enabled servers is skipped: no VCL is deployed there, and the
 * reload that follows the first server's arrival compiles it.
 */
export async function checkChangeCompiles(
  deps: Pick<ChangeDeps, 'config' | 'transport'>,
  writes: EntityWrite[],
  clusters: string[],
): Promise<void> {
  if (clusters.length === 0) return;
  // A template block can name generated identifiers (d0_web, ...), which any write may shift, so
  // every write to a cluster with a template compiles first.
  if (!writes.some(needsCompileCheck) && !(await anyUsesTemplate(deps.config, clusters))) return;
  const transport = deps.transport;
  if (!transport) {
    throw new ServiceUnavailableError(
      'this change must compile before it is saved, but the API has no transport to the Varnish servers; nothing was saved',
    );
  }

  const candidate = overlayStore(deps.config, writes);
  const results = await Promise.allSettled(
    clusters.map((clusterId) => checkCluster(transport, candidate, clusterId)),
  );
  const failures = results.flatMap((result) => (result.status === 'rejected' ? [result.reason] : []));
  const compileFailure = failures.find((reason) => reason instanceof ChangeDoesNotCompileError);
  if (compileFailure || failures[0]) throw compileFailure ?? failures[0];
}

async function anyUsesTemplate(config: ConfigStore, clusters: string[]): Promise<boolean> {
  const records = await Promise.all(clusters.map((clusterId) => config.get('cluster', clusterId)));
  return records.some((record) => record?.template !== undefined);
}

/** Returns a read-only store that shows the writes over the saved entities. */
export function overlayStore(base: ConfigStore, writes: EntityWrite[]): ConfigStore {
  const key = (kind: EntityKind, id: string) => `${kind}#${id}`;
  const written = new Map(writes.map((write) => [key(write.kind, write.id), write]));
  const readOnly = () => Promise.reject(new Error('the candidate configuration is read-only'));

  return {
    async get<K extends EntityKind>(kind: K, id: string) {
      const write = written.get(key(kind, id));
      return write ? (write.after as EntityByKind[K] | undefined) : base.get(kind, id);
    },
    async list<K extends EntityKind>(kind: K) {
      const saved = (await base.list(kind)).filter((item) => !written.has(key(kind, item.id)));
      const added = writes.filter((write) => write.kind === kind && write.after !== undefined);
      return [...saved, ...added.map((write) => write.after as EntityByKind[K])];
    },
    create: readOnly,
    update: readOnly,
    remove: readOnly,
  };
}

async function checkCluster(transport: VarnishTransport, candidate: ConfigStore, clusterId: string) {
  const config = await loadClusterConfig(candidate, clusterId);
  if (!config) return;

  const servers = config.servers
    .filter((server) => server.status !== 'disabled')
    .sort((a, b) => Number(b.status === 'active') - Number(a.status === 'active'));
  if (servers.length === 0) {
    logger.info('compile check skipped: the cluster has no enabled server', { clusterId });
    return;
  }

  // Servers that get the same VCL (all but canary and other-datacenter servers, usually) share a compile.
  const distinct = new Map<string, { vcl: string; server: Server }>();
  for (const server of servers) {
    const vcl = renderVcl(config, server);
    const hash = vclContentHash(vcl);
    if (!distinct.has(hash)) distinct.set(hash, { vcl, server });
  }

  for (const { vcl, server } of distinct.values()) {
    const others = servers.filter((candidateServer) => candidateServer.id !== server.id);
    await compileOnFirstReachable(transport, [server, ...others], vcl, clusterId, server);
  }
}

/** Compiles on the first server that responds; the VCL was rendered for `renderedFor`. */
async function compileOnFirstReachable(
  transport: VarnishTransport,
  servers: Server[],
  vcl: string,
  clusterId: string,
  renderedFor: Server,
) {
  const unreachable: string[] = [];
  for (const server of servers) {
    try {
      await compileWith(transport(server), vcl);
      return;
    } catch (error) {
      if (error instanceof VclCompileError) throw compileError(error, clusterId, renderedFor);
      if (!(error instanceof VarnishUnavailableError)) throw error;
      unreachable.push(`server ${server.id}: ${error.message}`);
      logger.warn('compile check: server unavailable, trying the next one', {
        clusterId,
        serverId: server.id,
      });
    }
  }

  throw new ServiceUnavailableError(
    `cannot check that the VCL for cluster ${clusterId} compiles, because no server of the cluster ` +
      `could compile it (${unreachable.join('; ')}); nothing was saved, so retry once a server is reachable`,
  );
}

/** Compiles with the agent's compile-only call, or loads under a throwaway name and discards. */
async function compileWith(agent: VarnishAgent, vcl: string): Promise<void> {
  if (agent.compileVcl) return agent.compileVcl(vcl);

  const name = `vaas-compile-${randomBytes(8).toString('hex')}`;
  await agent.loadVcl(name, vcl);
  try {
    await agent.discardVcl(name);
  } catch (error) {
    // The VCL compiled. Left loaded, it stays inactive and the next vcl.use discards it.
    logger.warn('compile check: discard of the throwaway VCL failed', { vclName: name, error });
  }
}

function compileError(error: VclCompileError, clusterId: string, server: Server) {
  const report = parseCompilerOutput(error.message);
  const where = report.line === undefined ? '' : ` at line ${report.line}, position ${report.position}`;
  return new ChangeDoesNotCompileError(
    `the VCL for cluster ${clusterId} (server ${server.id}) does not compile${where}: ${report.message}; nothing was saved`,
    { ...report, cluster: clusterId, server: server.id },
  );
}
