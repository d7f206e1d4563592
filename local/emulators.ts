import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CreateTableCommand, DescribeTableCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { CreateQueueCommand, GetQueueAttributesCommand, type SQSClient } from '@aws-sdk/client-sqs';
import dynalite from 'dynalite';
import { buildApp } from 'fauxqs';

export interface RunningEmulator {
  endpoint: string;
  close(): Promise<void>;
}

/**
 * Starts dynalite on 127.0.0.1. With `path` the data lives in LevelDB files there and survives a
 * restart; without it the data stays in memory.
 */
export async function startDynalite(
  options: { path?: string; port?: number } = {},
): Promise<RunningEmulator> {
  const server: Server = dynalite({
    createTableMs: 0,
    deleteTableMs: 0,
    updateTableMs: 0,
    path: options.path,
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** Starts fauxqs on 127.0.0.1 (its own start helper binds every interface). */
export async function startFauxqs(options: { port?: number } = {}): Promise<RunningEmulator> {
  const app = buildApp({ logger: false, host: '127.0.0.1' });
  await app.listen({ port: options.port ?? 0, host: '127.0.0.1' });
  const { port } = app.server.address() as AddressInfo;
  return { endpoint: `http://127.0.0.1:${port}`, close: () => app.close() };
}

/** Creates the vaas table as the stateful stack defines it, unless it exists. */
export async function ensureTable(client: DynamoDBClient, tableName: string): Promise<void> {
  try {
    await client.send(new DescribeTableCommand({ TableName: tableName }));
    return;
  } catch (error) {
    if ((error as Error).name !== 'ResourceNotFoundException') throw error;
  }
  await client.send(
    new CreateTableCommand({
      TableName: tableName,
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [
        { AttributeName: 'pk', AttributeType: 'S' },
        { AttributeName: 'sk', AttributeType: 'S' },
      ],
      KeySchema: [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
    }),
  );
}

/** Creates the FIFO task queue with its dead-letter queue and returns the task queue's URL. */
export async function ensureQueues(
  client: SQSClient,
  queueName: string,
  maxReceiveCount: number,
): Promise<string> {
  const deadLetter = await client.send(
    new CreateQueueCommand({ QueueName: `${queueName}-dlq.fifo`, Attributes: { FifoQueue: 'true' } }),
  );
  const deadLetterAttributes = await client.send(
    new GetQueueAttributesCommand({ QueueUrl: deadLetter.QueueUrl, AttributeNames: ['QueueArn'] }),
  );
  const deadLetterArn = deadLetterAttributes.Attributes?.QueueArn;
  const queue = await client.send(
    new CreateQueueCommand({
      QueueName: `${queueName}.fifo`,
      Attributes: {
        FifoQueue: 'true',
        VisibilityTimeout: '360',
        RedrivePolicy: JSON.stringify({ deadLetterTargetArn: deadLetterArn, maxReceiveCount }),
      },
    }),
  );
  if (!queue.QueueUrl) throw new Error('fauxqs did not return the task queue URL');
  return queue.QueueUrl;
}
