import { randomUUID } from 'node:crypto';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { createConfigStore } from '../adapters/dynamo-config-store.js';
import { createHistoryStore } from '../adapters/dynamo-history-store.js';
import { createTable } from '../adapters/dynamo-table.js';
import { createClusterStateStore, createTaskStore } from '../adapters/dynamo-task-store.js';
import { createSqsTaskQueue } from '../adapters/sqs-queue.js';
import type { ChangeDeps } from '../services/changes.js';

/** Wires the stores and the queue that every handler shares; Lambda and the local runtime both use it. */
export function buildChangeDeps(
  clients: { dynamo: DynamoDBClient; sqs: SQSClient },
  settings: { tableName: string; queueUrl: string },
): ChangeDeps {
  const table = createTable(settings.tableName, clients.dynamo);
  return {
    config: createConfigStore(table),
    tasks: createTaskStore(table),
    clusterState: createClusterStateStore(table),
    queue: createSqsTaskQueue(clients.sqs, settings.queueUrl),
    history: createHistoryStore(table),
    now: () => new Date(),
    newId: randomUUID,
  };
}
