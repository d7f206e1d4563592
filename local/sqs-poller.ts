import {
  ChangeMessageVisibilityCommand,
  DeleteMessageBatchCommand,
  type Message,
  ReceiveMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { logger } from '../functions/shared/logger.js';

type SqsHandler = (event: SQSEvent, context: Context) => Promise<SQSBatchResponse>;

export interface PollerOptions {
  queueUrl: string;
  /** Receive loops running at once. Each loop processes one batch at a time. */
  concurrency: number;
  /** How long a failed message stays hidden before it is delivered again, in seconds. */
  retryDelaySeconds: number;
}

export interface RunningPoller {
  stop(): Promise<void>;
}

/**
 * Calls the reload handler the way Lambda's SQS event source does for a FIFO queue: batches of
 * up to 10 messages, partial batch responses, deletion of the messages that succeeded. The queue
 * hides a message group while one of its messages is in flight, so a cluster is never processed
 * by two loops at once.
 */
export function startSqsPoller(
  client: SQSClient,
  handler: SqsHandler,
  options: PollerOptions,
): RunningPoller {
  let running = true;

  const loop = async () => {
    while (running) {
      try {
        await pollOnce(client, handler, options);
      } catch (error) {
        logger.error('SQS poll failed; retrying in 1 s', { error });
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
    }
  };
  const loops = Array.from({ length: options.concurrency }, loop);

  return {
    async stop() {
      running = false;
      await Promise.all(loops);
    },
  };
}

async function pollOnce(client: SQSClient, handler: SqsHandler, options: PollerOptions) {
  const received = await client.send(
    new ReceiveMessageCommand({
      QueueUrl: options.queueUrl,
      MaxNumberOfMessages: 10,
      WaitTimeSeconds: 1,
      MessageSystemAttributeNames: ['All'],
    }),
  );
  const messages = received.Messages ?? [];
  if (messages.length === 0) return;

  const response = await handler(
    { Records: messages.map((message) => toRecord(message, options.queueUrl)) },
    context(),
  );
  const failed = new Set(response.batchItemFailures.map((failure) => failure.itemIdentifier));
  const succeeded = messages.filter((message) => !failed.has(message.MessageId ?? ''));

  if (succeeded.length > 0) {
    await client.send(
      new DeleteMessageBatchCommand({
        QueueUrl: options.queueUrl,
        Entries: succeeded.map((message, index) => ({
          Id: String(index),
          ReceiptHandle: message.ReceiptHandle,
        })),
      }),
    );
  }
  for (const message of messages.filter((candidate) => failed.has(candidate.MessageId ?? ''))) {
    await client.send(
      new ChangeMessageVisibilityCommand({
        QueueUrl: options.queueUrl,
        ReceiptHandle: message.ReceiptHandle,
        VisibilityTimeout: options.retryDelaySeconds,
      }),
    );
  }
}

function toRecord(message: Message, queueUrl: string): SQSRecord {
  const attributes = message.Attributes ?? {};
  return {
    messageId: message.MessageId ?? '',
    receiptHandle: message.ReceiptHandle ?? '',
    body: message.Body ?? '',
    attributes: {
      ApproximateReceiveCount: attributes.ApproximateReceiveCount ?? '1',
      SentTimestamp: attributes.SentTimestamp ?? '',
      SenderId: attributes.SenderId ?? 'local',
      ApproximateFirstReceiveTimestamp: attributes.ApproximateFirstReceiveTimestamp ?? '',
      MessageGroupId: attributes.MessageGroupId,
      MessageDeduplicationId: attributes.MessageDeduplicationId,
      SequenceNumber: attributes.SequenceNumber,
    },
    messageAttributes: {},
    md5OfBody: message.MD5OfBody ?? '',
    eventSource: 'aws:sqs',
    eventSourceARN: `arn:aws:sqs:local:000000000000:${queueUrl.split('/').at(-1)}`,
    awsRegion: 'us-east-1',
  };
}

function context(): Context {
  return {
    functionName: 'vaas-reload-local',
    awsRequestId: crypto.randomUUID(),
    // Lambda's longest timeout: middy aborts a handler when the remaining time runs out.
    getRemainingTimeInMillis: () => 900_000,
  } as Context;
}
