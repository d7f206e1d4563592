// Two-phase reload of one cluster: load the new VCL on every server first, switch only when every
// load succeeded, so a failure leaves the old VCL active everywhere.

import type { VarnishAgent, VarnishTransport } from '../ports.js';
import { VaasError } from './errors.js';
import type { Server } from './model.js';
import { hashFromVclName, vclContentHash, vclNameFor } from './vcl.js';

export type ServerReloadStatus = 'skipped' | 'applied' | 'failed';

export interface ServerReloadResult {
  serverId: string;
  status: ServerReloadStatus;
  /** Why a server was skipped: it is disabled, or its active VCL has the rendered content already. */
  reason?: 'disabled' | 'unchanged';
  /** The active VCL of a skipped or applied server, or the VCL that a failed server did not activate. */
  vclName?: string;
  error?: string;
}

export interface ClusterReloadReport {
  servers: ServerReloadResult[];
}

/** At least one active server could not load or activate the new VCL. */
export class ClusterReloadError extends VaasError {
  override readonly statusCode = 502;
  override readonly title = 'Bad Gateway';

  constructor(
    message: string,
    readonly report: ClusterReloadReport,
  ) {
    super(message);
  }
}

/** Receives progress events; a Powertools Logger fits. */
export interface ReloadLog {
  info(message: string, attributes?: Record<string, unknown>): void;
  warn(message: string, attributes?: Record<string, unknown>): void;
}

export interface ReloadClusterOptions {
  servers: Server[];
  renderFor: (server: Server) => string;
  transport: VarnishTransport;
  now?: () => Date;
  log?: ReloadLog;
}

/** Per-server state during one reload. */
interface Target {
  server: Server;
  agent: VarnishAgent;
  vcl: string;
  /** Name of the VCL that this reload loads; empty while none is loaded. */
  vclName: string;
  /** True while the new VCL is loaded on the server and not discarded. */
  loaded: boolean;
  result: ServerReloadResult;
}

/**
 * Reloads every server that is not disabled and whose active VCL differs from the rendered one.
 *
 * Throws ClusterReloadError when an active server fails to load (then every VCL loaded by this
 * reload is discarded, best effort, and the old VCL stays active everywhere) or fails to activate.
 * A maintenance server's failure is only reported.
 */
export async function reloadCluster(options: ReloadClusterOptions): Promise<ClusterReloadReport> {
  const now = options.now ?? (() => new Date());
  const log = options.log;

  const { targets, report } = prepareTargets(options);
  await Promise.all(targets.map((target) => loadIfChanged(target, now(), log)));

  const loadFailures = failedActive(targets);
  if (loadFailures.length > 0) {
    await discardLoaded(targets, log);
    throw new ClusterReloadError(
      `VCL load failed, the old VCL stays active on every server: ${describe(loadFailures)}`,
      report,
    );
  }

  await Promise.all(targets.filter((target) => target.loaded).map((target) => activate(target, log)));

  const useFailures = failedActive(targets);
  if (useFailures.length > 0) {
    throw new ClusterReloadError(
      `vcl.use failed, so some servers may already run the new VCL; the next reload repairs them: ${describe(useFailures)}`,
      report,
    );
  }
  return report;
}

/** Renders every VCL before the first agent call, so a render error cannot leave a VCL half loaded. */
function prepareTargets(options: ReloadClusterOptions): { targets: Target[]; report: ClusterReloadReport } {
  const targets: Target[] = [];
  const report: ClusterReloadReport = { servers: [] };
  for (const server of options.servers) {
    if (server.status === 'disabled') {
      report.servers.push({ serverId: server.id, status: 'skipped', reason: 'disabled' });
      continue;
    }

    const target: Target = {
      server,
      agent: options.transport(server),
      vcl: options.renderFor(server),
      vclName: '',
      loaded: false,
      result: { serverId: server.id, status: 'skipped' },
    };
    targets.push(target);
    report.servers.push(target.result);
  }
  return { targets, report };
}

/** Phase 1 for one server: skips it when its active VCL has the same content hash, else loads. */
async function loadIfChanged(target: Target, now: Date, log: ReloadLog | undefined): Promise<void> {
  const hash = vclContentHash(target.vcl);
  try {
    const active = (await target.agent.listVcls()).find((item) => item.status === 'active');
    if (active && hashFromVclName(active.name) === hash.slice(0, 16)) {
      target.result.reason = 'unchanged';
      target.result.vclName = active.name;
      log?.info('server already runs this VCL', { serverId: target.server.id, vclName: active.name });
      return;
    }

    target.vclName = vclNameFor(hash, now);
    target.result.vclName = target.vclName;
    await target.agent.loadVcl(target.vclName, target.vcl);
    target.loaded = true;
    log?.info('VCL loaded', { serverId: target.server.id, vclName: target.vclName });
  } catch (error) {
    fail(target, error, log);
  }
}

/** Phase 2 for one server. */
async function activate(target: Target, log: ReloadLog | undefined): Promise<void> {
  try {
    await target.agent.useVcl(target.vclName);
    target.result.status = 'applied';
    log?.info('VCL activated', { serverId: target.server.id, vclName: target.vclName });
  } catch (error) {
    fail(target, error, log);
  }
}

async function discardLoaded(targets: Target[], log: ReloadLog | undefined): Promise<void> {
  const loaded = targets.filter((target) => target.loaded);
  await Promise.all(
    loaded.map(async (target) => {
      target.result.status = 'failed';
      target.result.error = 'not activated because the reload failed on another server';
      try {
        await target.agent.discardVcl(target.vclName);
        target.loaded = false;
      } catch (error) {
        // A VCL left loaded stays inactive; the agent discards it after the next successful vcl.use.
        log?.warn('discard after a failed load failed', {
          serverId: target.server.id,
          vclName: target.vclName,
          error: (error as Error).message,
        });
      }
    }),
  );
}

function fail(target: Target, error: unknown, log: ReloadLog | undefined): void {
  target.result.status = 'failed';
  target.result.error = error instanceof Error ? error.message : String(error);
  log?.warn('server reload failed', {
    serverId: target.server.id,
    serverStatus: target.server.status,
    vclName: target.result.vclName,
    error: target.result.error,
  });
}

function failedActive(targets: Target[]): Target[] {
  return targets.filter((target) => target.server.status === 'active' && target.result.status === 'failed');
}

function describe(targets: Target[]): string {
  return targets
    .map(({ server, result }) => `server ${server.id} (${hostPort(server)}): ${result.error}`)
    .join('; ');
}

function hostPort(server: Server): string {
  return server.address.includes(':')
    ? `[${server.address}]:${server.port}`
    : `${server.address}:${server.port}`;
}
