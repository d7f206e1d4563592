import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SQSClient } from '@aws-sdk/client-sqs';
import { createAgentTransport } from '../adapters/agent-client.js';
import { readConfig } from '../shared/config.js';
import { createMetricsObserver } from '../shared/metrics.js';
import { buildChangeDeps } from '../shared/wiring.js';
import { createReloadHandler } from './handler.js';

// Lambda entry point of the reload worker, fed by the SQS FIFO event source.
const config = readConfig();
const deps = buildChangeDeps({ dynamo: new DynamoDBClient({}), sqs: new SQSClient({}) }, config);
const transport = createAgentTransport({ token: config.agentToken, timeoutMs: config.agentTimeoutMs });

export const handler = createReloadHandler({ ...deps, transport, observer: createMetricsObserver() });
