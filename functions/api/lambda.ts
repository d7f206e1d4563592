import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SQSClient } from '@aws-sdk/client-sqs';
import { SSMClient } from '@aws-sdk/client-ssm';
import { createAgentTransport } from '../adapters/agent-client.js';
import { createRoutingTransport, createSsmTransport } from '../adapters/ssm-transport.js';
import { loadAgentToken } from '../shared/agent-token.js';
import { readConfig } from '../shared/config.js';
import { buildChangeDeps } from '../shared/wiring.js';
import { createApiHandler } from './handler.js';

// Lambda entry point of the API. API Gateway invokes it for reads; the sync-request state
// machine invokes it to save each write and to build the write's final response. Clients are
// created once per execution environment. The API reaches the agents too: it compiles changes to
// VCL code before saving them, and it serves previews, backend health and purges.
const config = readConfig();
const deps = buildChangeDeps({ dynamo: new DynamoDBClient({}), sqs: new SQSClient({}) }, config);
const agentKey = await loadAgentToken();
const transport = createRoutingTransport({
  agent: createAgentTransport({ key: agentKey, timeoutMs: config.agentTimeoutMs }),
  ssm: createSsmTransport({
    client: new SSMClient({}),
    timeoutSeconds: Number(process.env.VAAS_SSM_TIMEOUT_SECONDS ?? 20),
  }),
});

export const handler = createApiHandler({ ...deps, transport });
