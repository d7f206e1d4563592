import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SFNClient } from '@aws-sdk/client-sfn';
import { SQSClient } from '@aws-sdk/client-sqs';
import { createSfnTaskWaiter } from '../adapters/sfn-waiter.js';
import { readConfig } from '../shared/config.js';
import { buildChangeDeps } from '../shared/wiring.js';
import { createApiHandler } from './handler.js';

// Lambda entry point of the API. Clients are created once per execution environment.
const config = readConfig();
const deps = buildChangeDeps({ dynamo: new DynamoDBClient({}), sqs: new SQSClient({}) }, config);
const waiter = createSfnTaskWaiter(new SFNClient({}), config.syncStateMachineArn);

export const handler = createApiHandler({ ...deps, waiter });
