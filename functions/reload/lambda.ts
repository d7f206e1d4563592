import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SQSClient } from '@aws-sdk/client-sqs';
import { createAgentTransport } from '../adapters/agent-client.js';
import { loadAgentToken } from '../shared/agent-token.js';
import { readConfig } from '../shared/config.js';
import { createMetricsObserver } from '../shared/metrics.js';
import { buildChangeDeps } from '../shared/wiring.js';
import { createReloadHandler } from './handler.js';

// Lambda entry point of the reload worker, fed by the SQS FIFO event source. The agent token is
// read during initialization (top-level await), once per execution environment.
const config = readConfig();
const deps = buildChangeDeps({ dynamo: new DynamoDBClient({}), sqs: new SQSClient({}) }, config);
const agentToken = await loadAgentToken();
const transport = createAgentTransport({ token: agentToken, timeoutMs: config.agentTimeoutMs });

export const handler = createReloadHandler({ ...deps, transport, observer: createMetricsObserver() });
