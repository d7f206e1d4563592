import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SQSClient } from '@aws-sdk/client-sqs';
import { reconcile } from '../services/reconciler.js';
import { readConfig } from '../shared/config.js';
import { logger } from '../shared/logger.js';
import { buildChangeDeps } from '../shared/wiring.js';

// Lambda entry point of the reconciler, run on a schedule.
const config = readConfig();
const deps = buildChangeDeps({ dynamo: new DynamoDBClient({}), sqs: new SQSClient({}) }, config);
const retryAfterMs = Number(process.env.VAAS_RETRY_AFTER_SECONDS ?? 300) * 1000;
const resyncAfterMs = Number(process.env.VAAS_RESYNC_AFTER_SECONDS ?? 600) * 1000;
// SQS drops a resent message with the same deduplication id for 5 minutes, so wait longer.
const STALE_TASK_AGE_MS = 15 * 60_000;

export const handler = async () => {
  const report = await reconcile(deps, {
    outboxAgeMs: 60_000,
    retryAfterMs,
    staleTaskAgeMs: STALE_TASK_AGE_MS,
    resyncAfterMs,
  });
  logger.info('reconciled', { ...report });
  return report;
};
