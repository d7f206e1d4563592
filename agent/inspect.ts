// Agent routes that read or purge without changing the active VCL: compile-only checks, the active
// VCL's source, backend health and bans.
import { randomBytes } from 'node:crypto';
import type { Logger } from '@aws-lambda-powertools/logger';
import { ValidationError, VarnishUnavailableError } from '../functions/domain/errors.js';
import { banCommand, parsePurgeTarget } from '../functions/domain/purge-target.js';
import type { ActiveVcl, VarnishBackendHealth } from '../functions/ports.js';
import { type AdminResponse, CliStatus, jsonEntries, type VarnishAdminClient } from './admin-client.js';
import { type Handler, HttpProblem } from './http.js';

/** Runs admin commands one after another; see createSerialQueue in server.ts. */
export type SerialQueue = <T>(task: () => Promise<T>) => Promise<T>;

/**
 * cli_limit that the agent sets when a response comes back truncated (status 201). varnishd's
 * default is 48 KiB, which a VCL with a few hundred backends exceeds; 16 MiB covers the largest VCL
 * that the agent accepts (4 MiB) and its backend list. The setting lasts until varnishd restarts.
 */
const RAISED_CLI_LIMIT = '16m';

export function createInspectRoutes(admin: VarnishAdminClient, serialize: SerialQueue, logger: Logger) {
  const runComplete = (command: string) => runWithoutTruncation(admin, command, logger);

  const compileVcl: Handler = async (_request, readBody) => {
    const vcl = (await readBody()).vcl;
    if (typeof vcl !== 'string' || vcl.trim() === '' || vcl.includes('\u0000')) {
      throw new HttpProblem(422, 'vcl: must be a non-empty string without NUL characters', {
        errors: [{ field: 'vcl', message: 'must be a non-empty string without NUL characters' }],
      });
    }

    // A `vaas-` name lets the next vcl.use discard the VCL if the discard below fails.
    const name = `vaas-compile-${randomBytes(8).toString('hex')}`;
    await serialize(async () => {
      await admin.loadInline(name, vcl);
      const discarded = await admin.discard(name);
      if (discarded.status !== CliStatus.ok) {
        logger.warn('compile-only VCL not discarded', { vclName: name, reason: discarded.body.trim() });
      }
    });
    logger.info('VCL compiled', { bytes: Buffer.byteLength(vcl) });
    return { status: 200, body: { compiled: true } };
  };

  const activeVcl: Handler = async () => {
    const active = await serialize(async (): Promise<ActiveVcl & { truncated: boolean }> => {
      const current = (await admin.listVcls()).find((item) => item.status === 'active');
      if (!current) throw new VarnishUnavailableError(`varnishd at ${admin.address} has no active VCL`);
      const response = await runComplete(`vcl.show ${current.name}`);
      return {
        name: current.name,
        source: response.body,
        truncated: response.status === CliStatus.truncated,
      };
    });
    return { status: 200, body: active };
  };

  const backends: Handler = async () => {
    const response = await serialize(() => runComplete('backend.list -j'));
    if (response.status === CliStatus.truncated) {
      throw new VarnishUnavailableError(`backend.list on ${admin.address} was truncated; raise cli_limit`);
    }
    return { status: 200, body: { items: parseBackendList(response.body) } };
  };

  const purge: Handler = async (_request, readBody) => {
    const body = await readBody();
    let command: string;
    try {
      command = banCommand(parsePurgeTarget(body.url, body.headers));
    } catch (error) {
      if (!(error instanceof ValidationError)) throw error;
      throw new HttpProblem(422, error.message, { errors: error.problems });
    }

    const response = await serialize(() => admin.run(command));
    admin.expectOk('ban', response);
    logger.info('ban added', { command });
    return { status: 200, body: { ban: command.slice('ban '.length) } };
  };

  return { compileVcl, activeVcl, backends, purge };
}

/** Runs a command; when varnishd truncates the response, raises cli_limit once and runs it again. */
async function runWithoutTruncation(
  admin: VarnishAdminClient,
  command: string,
  logger: Logger,
): Promise<AdminResponse> {
  const first = await admin.run(command);
  if (first.status !== CliStatus.truncated) {
    admin.expectOk(command.split(' ', 1)[0] ?? command, first);
    return first;
  }

  const raised = await admin.run(`param.set cli_limit ${RAISED_CLI_LIMIT}`);
  admin.expectOk('param.set cli_limit', raised);
  logger.info('raised varnishd cli_limit after a truncated response', {
    command,
    cliLimit: RAISED_CLI_LIMIT,
  });

  const second = await admin.run(command);
  if (second.status !== CliStatus.truncated) admin.expectOk(command.split(' ', 1)[0] ?? command, second);
  return second;
}

/**
 * Parses `backend.list -j`: `[version, argv, timestamp, { "VCL.BACKEND": {...}, ... }]`. varnishd
 * 7.1 prints `admin_health` (`healthy`, `sick`, or `probe` when the probe decides) and
 * `probe_message` `[good, window, "healthy"|"sick"]`, with a window of 0 for a backend without probe.
 */
export function parseBackendList(body: string): VarnishBackendHealth[] {
  const items: VarnishBackendHealth[] = [];
  for (const group of jsonEntries('backend.list -j', body)) {
    if (typeof group !== 'object' || group === null) continue;
    for (const [name, value] of Object.entries(group as Record<string, unknown>)) {
      const item = backendHealthOf(name, value);
      if (item) items.push(item);
    }
  }
  return items;
}

function backendHealthOf(name: string, value: unknown): VarnishBackendHealth | undefined {
  const entry = (value ?? {}) as {
    type?: unknown;
    admin_health?: unknown;
    probe_message?: unknown;
    last_change?: unknown;
  };
  const dot = name.indexOf('.');
  if (entry.type !== 'backend' || dot < 1 || typeof entry.admin_health !== 'string') return undefined;

  const [good, window, verdict] = Array.isArray(entry.probe_message) ? entry.probe_message : [];
  const admin = entry.admin_health;
  const probeDecides = admin === 'probe' || admin === 'auto';
  const item: VarnishBackendHealth = {
    vcl: name.slice(0, dot),
    backend: name.slice(dot + 1),
    adminHealth: admin,
    healthy: probeDecides ? verdict === 'healthy' : admin === 'healthy',
  };
  if (typeof good === 'number' && typeof window === 'number' && window > 0) item.probe = { good, window };
  if (typeof entry.last_change === 'number')
    item.lastChange = new Date(entry.last_change * 1000).toISOString();
  return item;
}
