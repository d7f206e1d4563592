import { SendMessageBatchCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { TaskMessage, TaskQueue } from '../ports.js';

const MAX_BATCH = 10;

/** Sends task messages to an SQS FIFO queue, one message group per cluster. */
export function createSqsTaskQueue(client: SQSClient, queueUrl: string): TaskQueue {
  return {
    async send(messages) {
      for (let start = 0; start < messages.length; start += MAX_BATCH) {
        await sendBatch(client, queueUrl, messages.slice(start, start + MAX_BATCH));
      }
    },
  };
}

async function sendBatch(client: SQSClient, queueUrl: string, messages: TaskMessage[]) {
  const result = await client.send(
    new SendMessageBatchCommand({
      QueueUrl: queueUrl,
      Entries: messages.map((message, index) => ({
        Id: String(index),
        MessageBody: JSON.stringify(message),
        MessageGroupId: message.clusterId,
        // A resend of the same task part within SQS's 5-minute window is dropped by SQS.
        MessageDeduplicationId: `${message.taskId}.${message.clusterId}`,
      })),
    }),
  );

  const failed = result.Failed ?? [];
  if (failed.length > 0) {
    const reasons = failed.map((entry) => `${entry.Code}: ${entry.Message}`).join('; ');
    throw new Error(`SQS rejected ${failed.length} of ${messages.length} task messages: ${reasons}`);
  }
}

/** Parses and checks a queue message body; throws on anything that is not a TaskMessage. */
export function parseTaskMessage(body: string): TaskMessage {
  const value = JSON.parse(body) as Partial<TaskMessage>;
  const valid =
    typeof value.taskId === 'string' &&
    typeof value.clusterId === 'string' &&
    typeof value.timestamp === 'string' &&
    Number.isInteger(value.seq);
  if (!valid) throw new Error('task message must have taskId, clusterId, timestamp and an integer seq');
  return value as TaskMessage;
}
