import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SQSClient } from '@aws-sdk/client-sqs';
import { SSMClient } from '@aws-sdk/client-ssm';
import { createAgentTransport } from '../adapters/agent-client.js';
import { createRoutingTransport, createSsmTransport } from '../adapters/ssm-transport.js';
import { loadAgentToken } from '../shared/agent-token.js';
import { readConfig } from '../shared/config.js';
import { createMetricsObserver } from '../shared/metrics.js';
import { buildChangeDeps } from '../shared/wiring.js';
import { createReloadHandler } from './handler.js';

// Lambda entry point of the reload worker, fed by the SQS FIFO event source. The agent key (each
// agent's token is derived from it) is read during initialization (top-level await), once per execution environment. Servers with an
// agentUrl are reached through their agent, servers with an instanceId through SSM Run Command.
const config = readConfig();
const deps = buildChangeDeps({ dynamo: new DynamoDBClient({}), sqs: new SQSClient({}) }, config);
const agentKey = await loadAgentToken();
const transport = createRoutingTransport({
  agent: createAgentTransport({ key: agentKey, timeoutMs: config.agentTimeoutMs }),
  // A reload makes up to three commands one after another (list, load, use), so three times this
  // timeout must fit in the function's timeout.
  ssm: createSsmTransport({
    client: new SSMClient({}),
    timeoutSeconds: Number(process.env.VAAS_SSM_TIMEOUT_SECONDS ?? 30),
  }),
});

export const handler = createReloadHandler({ ...deps, transport, observer: createMetricsObserver() });
