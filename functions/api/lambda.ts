import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SQSClient } from '@aws-sdk/client-sqs';
import { readConfig } from '../shared/config.js';
import { buildChangeDeps } from '../shared/wiring.js';
import { createApiHandler } from './handler.js';

// Lambda entry point of the API. API Gateway invokes it for reads; the sync-request state
// machine invokes it to save each write and to build the write's final response. Clients are
// created once per execution environment.
const config = readConfig();
const deps = buildChangeDeps({ dynamo: new DynamoDBClient({}), sqs: new SQSClient({}) }, config);

export const handler = createApiHandler(deps);
