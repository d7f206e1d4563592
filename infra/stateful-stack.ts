import { CfnOutput, Duration, RemovalPolicy, Stack, type StackProps, Validations } from 'aws-cdk-lib';
import { AttributeType, BillingMode, Table, TableEncryption } from 'aws-cdk-lib/aws-dynamodb';
import { Secret } from 'aws-cdk-lib/aws-secretsmanager';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';

/**
 * Visibility timeout of the task queue. AWS recommends at least six times the timeout of the
 * function that the queue feeds; the stateless stack checks that at synth time.
 */
export const TASK_QUEUE_VISIBILITY_TIMEOUT = Duration.minutes(12);

/** Deliveries of a task message before SQS moves it to the dead-letter queue. */
export const MAX_RECEIVE_COUNT = 5;

/**
 * Everything that stores data: the table, the task queues and the agent token. Each resource is
 * retained when the stack or the resource is deleted, and the stateless stack only references
 * them, so removing the stateless stack never touches data.
 */
export class StatefulStack extends Stack {
  readonly table: Table;
  readonly taskQueue: Queue;
  readonly deadLetterQueue: Queue;
  readonly agentToken: Secret;
  readonly taskQueueVisibilityTimeout = TASK_QUEUE_VISIBILITY_TIMEOUT;

  constructor(scope: Construct, id: string, props: StackProps = {}) {
    super(scope, id, props);

    // Keys and TTL attribute as functions/adapters/dynamo-table.ts and dynamo-task-store.ts use them.
    this.table = new Table(this, 'Table', {
      partitionKey: { name: 'pk', type: AttributeType.STRING },
      sortKey: { name: 'sk', type: AttributeType.STRING },
      billingMode: BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      deletionProtection: true,
      timeToLiveAttribute: 'expiresAt',
      encryption: TableEncryption.AWS_MANAGED,
      removalPolicy: RemovalPolicy.RETAIN,
    });

    // Content-based deduplication is off because every message carries an explicit
    // MessageDeduplicationId (`taskId.clusterId`, see functions/adapters/sqs-queue.ts).
    this.deadLetterQueue = new Queue(this, 'DeadLetterQueue', {
      fifo: true,
      contentBasedDeduplication: false,
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.taskQueue = new Queue(this, 'TaskQueue', {
      fifo: true,
      contentBasedDeduplication: false,
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      visibilityTimeout: TASK_QUEUE_VISIBILITY_TIMEOUT,
      retentionPeriod: Duration.days(4),
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: MAX_RECEIVE_COUNT },
      removalPolicy: RemovalPolicy.RETAIN,
    });

    // The agents compare the token byte for byte and reject whitespace, so the generated value
    // has letters and digits only.
    this.agentToken = new Secret(this, 'AgentToken', {
      description: 'Bearer token that the vaas reload function sends to the vaas agents',
      generateSecretString: { passwordLength: 48, excludePunctuation: true, includeSpace: false },
      removalPolicy: RemovalPolicy.RETAIN,
    });
    Validations.of(this.agentToken).acknowledge({
      id: 'AwsSolutions-SMG4',
      reason:
        'Every agent host must receive a new token before the old one stops working, which a rotation ' +
        'Lambda cannot do; docs/deploy.md describes the manual rotation.',
    });

    new CfnOutput(this, 'TableName', { value: this.table.tableName });
    new CfnOutput(this, 'TaskQueueUrl', { value: this.taskQueue.queueUrl });
    new CfnOutput(this, 'AgentTokenSecretArn', { value: this.agentToken.secretArn });
  }
}
