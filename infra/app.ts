// CDK app of vaas: `npx cdk synth` or `npx cdk deploy --all` (cdk.json runs this file with tsx).
// Context values are listed in docs/deploy.md.
import { pathToFileURL } from 'node:url';
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { StatefulStack } from './stateful-stack.js';
import { type ReloadNetwork, StatelessStack } from './stateless-stack.js';

export interface VaasStacks {
  stateful: StatefulStack;
  stateless: StatelessStack;
}

/** Adds both vaas stacks to `app` and runs the cdk-nag AwsSolutions checks on them. */
export function buildVaasApp(app: App): VaasStacks {
  const env = { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION };

  const stateful = new StatefulStack(app, 'VaasStateful', {
    env,
    description: 'vaas data: DynamoDB table, SQS FIFO task queues, agent token (retained on delete)',
  });
  const stateless = new StatelessStack(app, 'VaasStateless', {
    env,
    description: 'vaas handlers, REST API, sync-request state machine and alarms (no data)',
    table: stateful.table,
    taskQueue: stateful.taskQueue,
    deadLetterQueue: stateful.deadLetterQueue,
    agentToken: stateful.agentToken,
    taskQueueVisibilityTimeout: stateful.taskQueueVisibilityTimeout,
    reloadNetwork: readReloadNetwork(app),
    reloadMaxConcurrency: readPositiveInteger(app, 'reloadMaxConcurrency'),
    alarmTopicArn: readMatching(app, 'alarmTopicArn', /^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[\w-]+$/),
    createApiGatewayLogsRole: readBoolean(app, 'createApiGatewayLogsRole'),
  });
  stateless.addStackDependency(stateful);

  Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
  return { stateful, stateless };
}

/** Reads `vpcId`, `subnetIds` and `securityGroupIds`; all absent means no VPC. */
export function readReloadNetwork(app: App): ReloadNetwork | undefined {
  const vpcId = readMatching(app, 'vpcId', /^vpc-[0-9a-f]{8,17}$/);
  const subnetIds = readIdList(app, 'subnetIds', /^subnet-[0-9a-f]{8,17}$/);
  const securityGroupIds = readIdList(app, 'securityGroupIds', /^sg-[0-9a-f]{8,17}$/);

  if (vpcId === undefined) {
    if (subnetIds.length > 0 || securityGroupIds.length > 0) {
      throw new Error('context subnetIds and securityGroupIds need vpcId: pass -c vpcId=vpc-... as well');
    }
    return undefined;
  }
  if (subnetIds.length === 0) {
    throw new Error(
      'context vpcId needs subnetIds: pass -c subnetIds=subnet-...,subnet-... (private subnets)',
    );
  }
  return { vpcId, subnetIds, securityGroupIds };
}

function readMatching(app: App, key: string, pattern: RegExp): string | undefined {
  const value = app.node.tryGetContext(key);
  if (value === undefined || value === '') return undefined;
  if (typeof value !== 'string' || !pattern.test(value)) {
    throw new Error(`invalid context ${key}=${JSON.stringify(value)}: expected a value matching ${pattern}`);
  }
  return value;
}

/** Accepts a JSON array (cdk.json) or a comma-separated string (`-c key=a,b` on the command line). */
function readIdList(app: App, key: string, pattern: RegExp): string[] {
  const value: unknown = app.node.tryGetContext(key);
  if (value === undefined || value === '') return [];

  const items = Array.isArray(value) ? value : String(value).split(',');
  const ids = items.map((item) => String(item).trim()).filter((item) => item !== '');
  const invalid = ids.find((id) => !pattern.test(id));
  if (invalid !== undefined) {
    throw new Error(`invalid context ${key}: ${JSON.stringify(invalid)} does not match ${pattern}`);
  }
  return ids;
}

function readPositiveInteger(app: App, key: string): number | undefined {
  const value: unknown = app.node.tryGetContext(key);
  if (value === undefined || value === '') return undefined;

  const number = Number(value);
  if (!Number.isInteger(number) || number < 2 || number > 1000) {
    throw new Error(`invalid context ${key}=${JSON.stringify(value)}: expected an integer from 2 to 1000`);
  }
  return number;
}

function readBoolean(app: App, key: string): boolean | undefined {
  const value: unknown = app.node.tryGetContext(key);
  if (value === undefined || value === '') return undefined;
  if (value === true || value === 'true') return true;
  if (value === false || value === 'false') return false;
  throw new Error(`invalid context ${key}=${JSON.stringify(value)}: expected true or false`);
}

// Runs only when executed as the CDK app, not when a test imports buildVaasApp.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  buildVaasApp(new App());
}
