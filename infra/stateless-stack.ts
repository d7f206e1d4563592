import { Aws, CfnOutput, Duration, Stack, type StackProps, Validations } from 'aws-cdk-lib';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import { SecurityGroup, Subnet, Vpc } from 'aws-cdk-lib/aws-ec2';
import { Rule, Schedule } from 'aws-cdk-lib/aws-events';
import { LambdaFunction } from 'aws-cdk-lib/aws-events-targets';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import type { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { ISecret } from 'aws-cdk-lib/aws-secretsmanager';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import { DefinitionBody, LogLevel, StateMachine, StateMachineType } from 'aws-cdk-lib/aws-stepfunctions';
import type { Construct } from 'constructs';
import { type SyncRequestSettings, syncRequestDefinition } from '../functions/statemachine/sync-request.js';
import { RELOAD_FAILURES_METRIC, VaasAlarms } from './alarms.js';
import { TABLE_ACTIONS, vaasFunction } from './functions.js';
import { VaasRestApi } from './rest-api.js';

/** Sync wait: one read of the task a second, 20 reads, so the execution ends after at most 25 s. */
export const SYNC_WAIT_SETTINGS: Pick<SyncRequestSettings, 'pollSeconds' | 'maxPolls'> = {
  pollSeconds: 1,
  maxPolls: 20,
};

/** API Gateway's default maximum integration timeout for REST APIs. */
export const API_INTEGRATION_TIMEOUT = Duration.seconds(29);

/**
 * The reload function's timeout. A reload makes up to four agent requests one after another
 * (list, load, use, discard), each allowed AGENT_REQUEST_TIMEOUT_MS.
 */
export const RELOAD_FUNCTION_TIMEOUT = Duration.minutes(2);
const AGENT_REQUEST_TIMEOUT_MS = 25_000;
/** SSM commands of one reload run one after another (list, load, use): 3 × 30 s fits in 2 minutes. */
const SSM_COMMAND_TIMEOUT_SECONDS = 30;
/** An SSM compile check in the API must end within API Gateway's 29-second integration timeout. */
const API_SSM_COMMAND_TIMEOUT_SECONDS = 20;

/** The reconciler runs every minute and must finish before the next run starts. */
const RECONCILE_FUNCTION_TIMEOUT = Duration.seconds(50);

export const DEFAULT_RELOAD_MAX_CONCURRENCY = 5;
export const API_THROTTLING = { rateLimit: 50, burstLimit: 100 };

export interface ReloadNetwork {
  vpcId: string;
  subnetIds: string[];
  /** Empty means CDK creates a security group that allows all outbound traffic. */
  securityGroupIds: string[];
}

export interface StatelessStackProps extends StackProps {
  table: ITable;
  taskQueue: IQueue;
  deadLetterQueue: IQueue;
  agentToken: ISecret;
  taskQueueVisibilityTimeout: Duration;
  /** Puts the reload function into these subnets so it reaches agents on private addresses. */
  reloadNetwork?: ReloadNetwork;
  reloadMaxConcurrency?: number;
  alarmTopicArn?: string;
  /** See VaasRestApiProps.createAccountLogsRole; defaults to true. */
  createApiGatewayLogsRole?: boolean;
}

/** The handlers, the API, the state machine and the alarms. This stack stores no data of its own. */
export class StatelessStack extends Stack {
  readonly apiFunction: NodejsFunction;
  readonly reloadFunction: NodejsFunction;
  readonly reconcileFunction: NodejsFunction;
  readonly syncRequest: StateMachine;
  readonly restApi: VaasRestApi;
  readonly alarms: VaasAlarms;

  constructor(scope: Construct, id: string, props: StatelessStackProps) {
    super(scope, id, props);
    assertVisibilityTimeout(props.taskQueueVisibilityTimeout, RELOAD_FUNCTION_TIMEOUT);

    const shared = { VAAS_TABLE_NAME: props.table.tableName, VAAS_QUEUE_URL: props.taskQueue.queueUrl };
    // The API function reaches the agents too: it compiles changes before saving them and serves
    // previews, backend health and purges. So it gets the agent key, SSM and the reload network.
    const network = props.reloadNetwork && this.importNetwork(props.reloadNetwork);
    const agentAccess = {
      VAAS_AGENT_TOKEN_SECRET_ARN: props.agentToken.secretArn,
      VAAS_AGENT_TIMEOUT_MS: String(AGENT_REQUEST_TIMEOUT_MS),
    };
    this.apiFunction = vaasFunction(this, 'ApiFunction', {
      entry: 'functions/api/lambda.ts',
      serviceName: 'vaas-api',
      timeout: API_INTEGRATION_TIMEOUT,
      memorySize: 512,
      environment: {
        ...shared,
        ...agentAccess,
        VAAS_SSM_TIMEOUT_SECONDS: String(API_SSM_COMMAND_TIMEOUT_SECONDS),
      },
      bundledFiles: ['agent/ssm/apply-vcl.sh'],
      network,
    });
    const definition = syncRequestDefinition({
      tableName: props.table.tableName,
      apiFunctionArn: this.apiFunction.functionArn,
      ...SYNC_WAIT_SETTINGS,
    });
    assertSyncWaitEndsFirst(definition.TimeoutSeconds, API_INTEGRATION_TIMEOUT);
    this.syncRequest = this.createSyncRequest(definition, props.table);

    this.reloadFunction = vaasFunction(this, 'ReloadFunction', {
      entry: 'functions/reload/lambda.ts',
      serviceName: 'vaas-reload',
      timeout: RELOAD_FUNCTION_TIMEOUT,
      memorySize: 512,
      environment: {
        ...shared,
        POWERTOOLS_METRICS_NAMESPACE: RELOAD_FAILURES_METRIC.namespace,
        ...agentAccess,
        VAAS_SSM_TIMEOUT_SECONDS: String(SSM_COMMAND_TIMEOUT_SECONDS),
      },
      // The SSM transport sends this script with every command; it reads it from $LAMBDA_TASK_ROOT.
      bundledFiles: ['agent/ssm/apply-vcl.sh'],
      network,
    });
    this.reconcileFunction = vaasFunction(this, 'ReconcileFunction', {
      entry: 'functions/reconcile/lambda.ts',
      serviceName: 'vaas-reconcile',
      timeout: RECONCILE_FUNCTION_TIMEOUT,
      memorySize: 256,
      environment: { ...shared, VAAS_RETRY_AFTER_SECONDS: '300', VAAS_RESYNC_AFTER_SECONDS: '600' },
    });

    this.grantAccess(props);
    this.connectReloadQueue(props);
    new Rule(this, 'ReconcileSchedule', {
      description: 'Runs the vaas reconciler every minute',
      schedule: Schedule.rate(Duration.minutes(1)),
      // A missed run is not retried: the next one starts a minute later.
      targets: [new LambdaFunction(this.reconcileFunction, { retryAttempts: 0 })],
    });

    this.restApi = new VaasRestApi(this, 'RestApi', {
      handler: this.apiFunction,
      syncRequest: this.syncRequest,
      integrationTimeout: API_INTEGRATION_TIMEOUT,
      throttling: API_THROTTLING,
      createAccountLogsRole: props.createApiGatewayLogsRole ?? true,
    });
    this.alarms = new VaasAlarms(this, 'Alarms', props);

    new CfnOutput(this, 'ApiUrl', { value: this.restApi.api.url });
    new CfnOutput(this, 'SyncRequestStateMachineArn', { value: this.syncRequest.stateMachineArn });
  }

  /** Creates the Express state machine that every write runs: save through the API function, then wait. */
  private createSyncRequest(
    definition: ReturnType<typeof syncRequestDefinition>,
    table: ITable,
  ): StateMachine {
    const logGroup = new LogGroup(this, 'SyncRequestLogs', { retention: RetentionDays.ONE_MONTH });
    const stateMachine = new StateMachine(this, 'SyncRequest', {
      stateMachineType: StateMachineType.EXPRESS,
      definitionBody: DefinitionBody.fromString(JSON.stringify(definition)),
      // Express executions keep no history; this log is the only record of each state transition.
      logs: { destination: logGroup, level: LogLevel.ALL, includeExecutionData: false },
    });
    stateMachine.addToRolePolicy(
      new PolicyStatement({ actions: ['dynamodb:GetItem'], resources: [table.tableArn] }),
    );
    // Only the unqualified function: grantInvoke would add every version (`arn:*`) as well.
    stateMachine.addToRolePolicy(
      new PolicyStatement({ actions: ['lambda:InvokeFunction'], resources: [this.apiFunction.functionArn] }),
    );

    Validations.of(stateMachine).acknowledge(
      {
        id: 'AwsSolutions-IAM5[Resource::*]',
        reason:
          'Step Functions log delivery actions (logs:CreateLogDelivery and related) support no resource-level ' +
          'permissions, so CDK grants them on "*".',
      },
      {
        id: 'AwsSolutions-SF2',
        reason:
          'X-Ray tracing is off because no other vaas component traces; the execution log at level ALL ' +
          'records every state transition.',
      },
    );
    return stateMachine;
  }

  private importNetwork(network: ReloadNetwork) {
    // Explicit ids instead of Vpc.fromLookup, so that synth needs no AWS credentials.
    const vpc = Vpc.fromVpcAttributes(this, 'ReloadVpc', {
      vpcId: network.vpcId,
      availabilityZones: this.availabilityZones,
    });
    const subnets = network.subnetIds.map((subnetId) => {
      const subnet = Subnet.fromSubnetId(this, `ReloadSubnet-${subnetId}`, subnetId);
      Validations.of(subnet).acknowledge({
        id: 'Annotation::@aws-cdk/aws-ec2:noSubnetRouteTableId',
        reason:
          'The function configuration needs only the subnet id; nothing in this app reads the route table.',
      });
      return subnet;
    });
    const securityGroups = network.securityGroupIds.map((groupId) =>
      SecurityGroup.fromSecurityGroupId(this, `ReloadSecurityGroup-${groupId}`, groupId, { mutable: false }),
    );
    return { vpc, subnets, securityGroups };
  }

  private grantAccess(props: StatelessStackProps): void {
    const tableAccess = new PolicyStatement({ actions: TABLE_ACTIONS, resources: [props.table.tableArn] });
    const sendTasks = new PolicyStatement({
      actions: ['sqs:SendMessage'],
      resources: [props.taskQueue.queueArn],
    });

    this.apiFunction.addToRolePolicy(tableAccess);
    this.apiFunction.addToRolePolicy(sendTasks);

    this.reconcileFunction.addToRolePolicy(tableAccess);
    this.reconcileFunction.addToRolePolicy(sendTasks);

    this.reloadFunction.addToRolePolicy(tableAccess);
    for (const fn of [this.apiFunction, this.reloadFunction]) {
      fn.addToRolePolicy(
        new PolicyStatement({
          actions: ['secretsmanager:GetSecretValue'],
          resources: [props.agentToken.secretArn],
        }),
      );
      this.grantRunShellScript(fn);
    }
  }

  /**
   * Lets a function run AWS-RunShellScript on EC2 instances tagged `vaas:managed=true`.
   * The tag condition uses `ssm:resourceTag/…`, the key that the Systems Manager user guide gives
   * for restricting Run Command by instance tags. The document has no such tag, so it gets its own
   * statement without the condition.
   */
  private grantRunShellScript(fn: NodejsFunction): void {
    // Pseudo parameters instead of formatArn, so that the ARNs and the cdk-nag finding id below do
    // not change with the stack's environment. AWS-owned documents have no account in their ARN.
    const document = `arn:${Aws.PARTITION}:ssm:${Aws.REGION}::document/AWS-RunShellScript`;
    const instances = `arn:${Aws.PARTITION}:ec2:${Aws.REGION}:${Aws.ACCOUNT_ID}:instance/*`;
    fn.addToRolePolicy(new PolicyStatement({ actions: ['ssm:SendCommand'], resources: [document] }));
    fn.addToRolePolicy(
      new PolicyStatement({
        actions: ['ssm:SendCommand'],
        resources: [instances],
        conditions: { StringEquals: { 'ssm:resourceTag/vaas:managed': 'true' } },
      }),
    );
    // GetCommandInvocation and CancelCommand have no resource type in IAM, so they can only be
    // granted on "*". The transport cancels a command whose result it stopped waiting for.
    fn.addToRolePolicy(
      new PolicyStatement({ actions: ['ssm:GetCommandInvocation', 'ssm:CancelCommand'], resources: ['*'] }),
    );

    Validations.of(fn.role ?? fn).acknowledge(
      {
        id: 'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:instance/*]',
        reason:
          'Instances are registered through the API at run time, so SendCommand names every instance and ' +
          'the ssm:resourceTag/vaas:managed=true condition selects the allowed ones.',
      },
      {
        id: 'AwsSolutions-IAM5[Resource::*]',
        reason:
          'ssm:GetCommandInvocation and ssm:CancelCommand support no resource-level permissions, so they need "*".',
      },
    );
  }

  private connectReloadQueue(props: StatelessStackProps): void {
    this.reloadFunction.addEventSource(
      new SqsEventSource(props.taskQueue, {
        batchSize: 10,
        reportBatchItemFailures: true,
        maxConcurrency: props.reloadMaxConcurrency ?? DEFAULT_RELOAD_MAX_CONCURRENCY,
      }),
    );
  }
}

/** Throws at synth time when the queue could redeliver a message that a function is still processing. */
export function assertVisibilityTimeout(visibilityTimeout: Duration, functionTimeout: Duration): void {
  if (visibilityTimeout.toSeconds() < 6 * functionTimeout.toSeconds()) {
    throw new Error(
      `task queue visibility timeout ${visibilityTimeout.toSeconds()} s is below 6 × the reload function ` +
        `timeout (${functionTimeout.toSeconds()} s); raise TASK_QUEUE_VISIBILITY_TIMEOUT in infra/stateful-stack.ts`,
    );
  }
}

/** Throws at synth time when API Gateway could cut off a synchronous wait before it ends. */
export function assertSyncWaitEndsFirst(waitTimeoutSeconds: number, integrationTimeout: Duration): void {
  if (waitTimeoutSeconds >= integrationTimeout.toSeconds()) {
    throw new Error(
      `sync wait timeout ${waitTimeoutSeconds} s must be below the API integration timeout ` +
        `${integrationTimeout.toSeconds()} s; lower SYNC_WAIT_SETTINGS in infra/stateless-stack.ts`,
    );
  }
}
