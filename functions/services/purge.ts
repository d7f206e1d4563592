// Purges one URL from the cache of every enabled server of the given clusters, through each
// server's agent, which adds a `ban` on the URL and the given headers.
import { z } from 'zod';
import { PurgeFailedError, ValidationError } from '../domain/errors.js';
import type { Server } from '../domain/model.js';
import { type PurgeTarget, parsePurgeTarget } from '../domain/purge-target.js';
import type { ConfigStore, VarnishTransport } from '../ports.js';
import { logger } from '../shared/logger.js';
import { parseInput } from './validation.js';

export interface PurgeResult {
  server: string;
  cluster: string;
  /** `skipped` for a disabled server, which serves no traffic. */
  status: 'purged' | 'failed' | 'skipped';
  error?: string;
}

const purgeInput = z.strictObject({
  clusters: z
    .array(z.string().min(1).max(64))
    .min(1)
    .max(100)
    .refine((ids) => new Set(ids).size === ids.length, 'must not repeat a cluster'),
  url: z.unknown(),
  headers: z.unknown().optional(),
});

/**
 * Handles `POST /v1/purge`. Returns the per-server results when every enabled server purged;
 * throws PurgeFailedError (502) with the same results when any of them failed.
 */
export async function purgeUrl(deps: { config: ConfigStore; transport?: VarnishTransport }, body: unknown) {
  const input = parseInput(purgeInput, body);
  const target = parsePurgeTarget(input.url, input.headers);
  await requireClusters(deps.config, input.clusters);

  const servers = (await deps.config.list('server')).filter((server) =>
    input.clusters.includes(server.cluster),
  );
  const results = await Promise.all(servers.map((server) => purgeOn(deps.transport, server, target)));
  const failed = results.filter((result) => result.status === 'failed');
  logger.info('purge finished', { path: target.path, clusters: input.clusters, failed: failed.length });

  const response = { url: target.path, headers: target.headers, results };
  if (failed.length > 0) {
    throw new PurgeFailedError(
      `the purge failed on ${failed.length} of ${results.length} servers; the others purged, so retry the purge`,
      results,
    );
  }
  return response;
}

async function purgeOn(
  transport: VarnishTransport | undefined,
  server: Server,
  target: PurgeTarget,
): Promise<PurgeResult> {
  const result: PurgeResult = { server: server.id, cluster: server.cluster, status: 'purged' };
  if (server.status === 'disabled') return { ...result, status: 'skipped' };

  const agent = transport?.(server);
  if (!agent?.purge)
    return { ...result, status: 'failed', error: 'the transport to this server cannot purge' };
  try {
    await agent.purge(target);
    return result;
  } catch (error) {
    return { ...result, status: 'failed', error: error instanceof Error ? error.message : String(error) };
  }
}

async function requireClusters(config: ConfigStore, clusterIds: string[]) {
  const problems = [];
  for (const [index, clusterId] of clusterIds.entries()) {
    if (!(await config.get('cluster', clusterId))) {
      problems.push({ field: `clusters.${index}`, message: `cluster ${clusterId} does not exist` });
    }
  }
  if (problems.length > 0) throw new ValidationError(problems);
}
