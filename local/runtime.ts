import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SQSClient } from '@aws-sdk/client-sqs';
import { createAgentTransport } from '../functions/adapters/agent-client.js';
import { type ApiDeps, createApiHandler } from '../functions/api/handler.js';
import type { ReloadObserver, VarnishTransport } from '../functions/ports.js';
import { createReloadHandler } from '../functions/reload/handler.js';
import {
  type ReconcileOptions,
  type ReconcileReport,
  reconcile,
  resyncAllClusters,
} from '../functions/services/reconciler.js';
import type { ReloadDeps } from '../functions/services/reload-worker.js';
import { logger } from '../functions/shared/logger.js';
import { buildChangeDeps } from '../functions/shared/wiring.js';
import { startApiGateway } from './api-gateway.js';
import { ensureQueues, ensureTable, type RunningEmulator, startDynalite, startFauxqs } from './emulators.js';
import { startSqsPoller } from './sqs-poller.js';
import { createLocalSyncRunner } from './sync-runner.js';

export interface LocalRuntimeOptions {
  /** API port on 127.0.0.1; 0 picks a free one. */
  port: number;
  /** Folder for dynalite's LevelDB files; undefined keeps the data in memory. */
  dataDir?: string;
  /** The key that each agent's token is derived from; required unless `transport` is given. */
  agentKey?: string;
  transport?: VarnishTransport;
  observer?: ReloadObserver;
  /** Sync wait: pause between reads of the task and the number of reads before 202. */
  syncPollMs?: number;
  syncMaxPolls?: number;
  /** Reconciler period and the pause before a cluster that is behind is retried, in ms. */
  reconcileIntervalMs?: number;
  retryAfterMs?: number;
  /** Period of the fleet check that reloads every cluster; undefined turns it off. */
  resyncAfterMs?: number;
}

export interface LocalRuntime {
  apiUrl: string;
  /** The SDK clients pointed at the emulators. */
  clients: { dynamo: DynamoDBClient; sqs: SQSClient };
  deps: ApiDeps & ReloadDeps;
  /** Runs one reconciler pass now, with an outbox age of zero unless overridden. */
  reconcileNow(options?: Partial<ReconcileOptions>): Promise<ReconcileReport>;
  /** Queues a reload of every cluster; returns their ids. */
  resyncAll(): Promise<string[]>;
  stop(): Promise<void>;
}

const TABLE_NAME = 'vaas';
const QUEUE_NAME = 'vaas-tasks';
// Local clients talk to emulators, which accept any credentials.
const LOCAL_CLIENT = { region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } };

/**
 * Starts the whole request flow in one process: dynalite, fauxqs, the API behind a local HTTP
 * gateway, the SQS poller that feeds the reload handler, the sync-request state machine and a
 * periodic reconciler. Everything listens on 127.0.0.1 only.
 */
export async function startLocalRuntime(options: LocalRuntimeOptions): Promise<LocalRuntime> {
  const stoppers: (() => Promise<void>)[] = [];
  const stop = async () => {
    for (const stopOne of stoppers.reverse()) await stopOne();
  };

  try {
    const dynamoEmulator: RunningEmulator = await startDynalite({ path: options.dataDir });
    stoppers.push(dynamoEmulator.close);
    const sqsEmulator = await startFauxqs();
    stoppers.push(sqsEmulator.close);

    const dynamo = new DynamoDBClient({ ...LOCAL_CLIENT, endpoint: dynamoEmulator.endpoint });
    const sqs = new SQSClient({ ...LOCAL_CLIENT, endpoint: sqsEmulator.endpoint });
    await ensureTable(dynamo, TABLE_NAME);
    const queueUrl = await ensureQueues(sqs, QUEUE_NAME, 5);

    const changeDeps = buildChangeDeps({ dynamo, sqs }, { tableName: TABLE_NAME, queueUrl });
    const transport =
      options.transport ?? createAgentTransport({ key: requireKey(options), timeoutMs: 60_000 });
    const deps = { ...changeDeps, transport, observer: options.observer };

    const apiFunction = createApiHandler(deps);
    const runner = createLocalSyncRunner(dynamo, apiFunction, {
      tableName: TABLE_NAME,
      pollSeconds: 1,
      pollMs: options.syncPollMs ?? 200,
      maxPolls: options.syncMaxPolls ?? 600,
    });
    const gateway = await startApiGateway(apiFunction as never, runner, options.port);
    stoppers.push(gateway.close);
    const poller = startSqsPoller(sqs, createReloadHandler(deps), {
      queueUrl,
      // Each loop processes one cluster's batch at a time, so this many clusters reload at once.
      concurrency: 8,
      retryDelaySeconds: 2,
    });
    stoppers.push(poller.stop);

    const retryAfterMs = options.retryAfterMs ?? 30_000;
    const reconcileNow = (overrides: Partial<ReconcileOptions> = {}) =>
      reconcile(deps, { outboxAgeMs: 0, retryAfterMs, ...overrides });
    const timer = setInterval(() => {
      const periodic = {
        outboxAgeMs: 60_000,
        retryAfterMs,
        staleTaskAgeMs: 60_000,
        resyncAfterMs: options.resyncAfterMs,
      };
      reconcile(deps, periodic).catch((error) => logger.error('reconciler pass failed', { error }));
    }, options.reconcileIntervalMs ?? 15_000);
    stoppers.push(async () => clearInterval(timer));

    return {
      apiUrl: gateway.url,
      clients: { dynamo, sqs },
      deps,
      reconcileNow,
      resyncAll: () => resyncAllClusters(deps),
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

function requireKey(options: LocalRuntimeOptions): string {
  if (!options.agentKey) throw new Error('agentKey is required when no transport is given');
  return options.agentKey;
}
