import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { parseTaskMessage } from '../adapters/sqs-queue.js';
import type { TaskMessage } from '../ports.js';
import { processClusterBatch, type ReloadDeps } from '../services/reload-worker.js';
import { logger } from '../shared/logger.js';

/**
 * Builds the reload handler for the SQS FIFO event source, with partial batch responses. Records
 * of one cluster (one message group) are processed together in queue order; groups run in
 * parallel. When a group fails, all of its records are reported as failures, so SQS keeps their
 * order and redelivers them.
 */
export function createReloadHandler(deps: ReloadDeps) {
  const handle = async (event: SQSEvent): Promise<SQSBatchResponse> => {
    const groups = groupByCluster(event.Records);
    const failures: string[] = [];

    await Promise.all(
      [...groups].map(async ([clusterId, records]) => {
        try {
          const parts = records.map((record) => parseTaskMessage(record.body));
          await processClusterBatch(deps, clusterId, parts.filter(belongsTo(clusterId)));
        } catch (error) {
          logger.error('task batch failed; the queue will redeliver it', {
            clusterId,
            messageIds: records.map((record) => record.messageId),
            error,
          });
          failures.push(...records.map((record) => record.messageId));
        }
      }),
    );

    return { batchItemFailures: failures.map((itemIdentifier) => ({ itemIdentifier })) };
  };

  return middy<SQSEvent, SQSBatchResponse, Error, Context>(handle).use(
    injectLambdaContext(logger, { resetKeys: true }),
  );
}

function groupByCluster(records: SQSRecord[]): Map<string, SQSRecord[]> {
  const groups = new Map<string, SQSRecord[]>();
  for (const record of records) {
    const clusterId = record.attributes.MessageGroupId ?? 'unknown';
    groups.set(clusterId, [...(groups.get(clusterId) ?? []), record]);
  }
  return groups;
}

/** Drops a part whose body names another cluster than its message group, which only a forged message does. */
function belongsTo(clusterId: string) {
  return (part: TaskMessage) => {
    if (part.clusterId === clusterId) return true;
    logger.warn('task message names another cluster than its message group; ignored', {
      clusterId,
      taskId: part.taskId,
    });
    return false;
  };
}
