// CDK assertion tests: every promise of the two stacks, checked in the synthesized templates.
// Synthesis bundles the three functions with esbuild, so each app is synthesized once.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App, Duration } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createMetricsObserver } from '../../functions/shared/metrics.js';
import { syncRequestDefinition } from '../../functions/statemachine/sync-request.js';
import { buildVaasApp, type VaasStacks } from '../../infra/app.js';
import { MAX_RECEIVE_COUNT } from '../../infra/stateful-stack.js';
import { API_INTEGRATION_TIMEOUT, StatelessStack, SYNC_WAIT_SETTINGS } from '../../infra/stateless-stack.js';

type Json = Record<string, unknown>;
interface Statement {
  Action: string | string[];
  Resource: unknown;
  Condition?: Json;
}

const CDK_CONTEXT = JSON.parse(readFileSync(new URL('../../cdk.json', import.meta.url), 'utf8')).context;
const outdirs: string[] = [];

interface Synthesized {
  app: App;
  stacks: VaasStacks;
  stateful: Template;
  stateless: Template;
}

/** Returns a fresh output folder that afterAll removes; an App without one leaves /tmp/cdk.out* behind. */
function tempOutdir(): string {
  const outdir = mkdtempSync(join(tmpdir(), 'vaas-cdk-'));
  outdirs.push(outdir);
  return outdir;
}

function synthesize(context: Json = {}): Synthesized {
  const outdir = tempOutdir();
  const app = new App({ outdir, context: { ...CDK_CONTEXT, ...context } });
  const stacks = buildVaasApp(app);
  app.synth();
  return {
    app,
    stacks,
    stateful: Template.fromStack(stacks.stateful),
    stateless: Template.fromStack(stacks.stateless),
  };
}

/** Logical id of the only resource of a type. */
function onlyResource(template: Template, type: string): [string, Json] {
  const entries = Object.entries(template.findResources(type));
  expect(entries).toHaveLength(1);
  return entries[0] as [string, Json];
}

function props(resource: Json): Json {
  return resource.Properties as Json;
}

/**
 * Replaces cross-stack references (Fn::GetStackOutput or Fn::ImportValue) with the value of the
 * stateful stack's output, so a reference reads as the `Ref` or `Fn::GetAtt` it stands for.
 */
function resolveReferences(value: unknown, stateful: Template): unknown {
  if (Array.isArray(value)) return value.map((item) => resolveReferences(item, stateful));
  if (value === null || typeof value !== 'object') return value;

  const outputs = stateful.toJSON().Outputs as Record<string, { Value: unknown; Export?: { Name: string } }>;
  const weak = (value as Json)['Fn::GetStackOutput'] as { OutputName: string } | undefined;
  if (weak) return outputs[weak.OutputName]?.Value;
  const imported = (value as Json)['Fn::ImportValue'];
  if (imported !== undefined)
    return Object.values(outputs).find((output) => output.Export?.Name === imported)?.Value;

  return Object.fromEntries(
    Object.entries(value).map(([key, item]) => [key, resolveReferences(item, stateful)]),
  );
}

/** Statements of the policy attached to the role whose logical id starts with `rolePrefix`. */
function statementsOf(synthesized: Synthesized, rolePrefix: string): Statement[] {
  const policies = Object.values(synthesized.stateless.findResources('AWS::IAM::Policy')).filter((policy) =>
    (props(policy).Roles as { Ref: string }[]).some((role) => role.Ref.startsWith(rolePrefix)),
  );
  expect(policies).toHaveLength(1);
  const document = props(policies[0] as Json).PolicyDocument as { Statement: Statement[] };
  return resolveReferences(document.Statement, synthesized.stateful) as Statement[];
}

/** Renders an ARN built with Fn::Join and pseudo parameters as one string, such as `arn:<AWS::Partition>:…`. */
function flatten(value: unknown): string {
  if (typeof value === 'string') return value;
  const ref = (value as { Ref?: string }).Ref;
  if (ref !== undefined) return `<${ref}>`;
  const [separator, parts] = (value as { 'Fn::Join': [string, unknown[]] })['Fn::Join'];
  return parts.map(flatten).join(separator);
}

function actionsOf(statement: Statement): string[] {
  return Array.isArray(statement.Action) ? statement.Action : [statement.Action];
}

function statementFor(statements: Statement[], action: string): Statement[] {
  return statements.filter((statement) => actionsOf(statement).includes(action));
}

let main: Synthesized;
let tableId: string;
let taskQueueId: string;
let deadLetterQueueId: string;

beforeAll(() => {
  main = synthesize();
  tableId = onlyResource(main.stateful, 'AWS::DynamoDB::Table')[0];
  const queues = main.stateful.findResources('AWS::SQS::Queue');
  taskQueueId = Object.keys(queues).find((id) => id.startsWith('TaskQueue')) ?? '';
  deadLetterQueueId = Object.keys(queues).find((id) => id.startsWith('DeadLetterQueue')) ?? '';
});

afterAll(() => {
  for (const outdir of outdirs) rmSync(outdir, { recursive: true, force: true });
});

describe('stateful stack', () => {
  it('table has the keys, PITR and deletion protection', () => {
    main.stateful.hasResourceProperties('AWS::DynamoDB::Table', {
      KeySchema: [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
      BillingMode: 'PAY_PER_REQUEST',
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      DeletionProtectionEnabled: true,
      TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
      SSESpecification: { SSEEnabled: true },
    });
  });

  it('task queue is FIFO with explicit deduplication', () => {
    const queue = props(main.stateful.toJSON().Resources[taskQueueId]);
    expect(queue.FifoQueue).toBe(true);
    expect(queue.ContentBasedDeduplication).toBe(false);
    expect(queue.SqsManagedSseEnabled).toBe(true);
  });

  it('task queue redrives to the FIFO dead-letter queue', () => {
    const queue = props(main.stateful.toJSON().Resources[taskQueueId]);
    const deadLetterQueue = props(main.stateful.toJSON().Resources[deadLetterQueueId]);
    expect(queue.RedrivePolicy).toEqual({
      deadLetterTargetArn: { 'Fn::GetAtt': [deadLetterQueueId, 'Arn'] },
      maxReceiveCount: MAX_RECEIVE_COUNT,
    });
    expect(deadLetterQueue.FifoQueue).toBe(true);
    expect(deadLetterQueue.SqsManagedSseEnabled).toBe(true);
  });

  it('data resources are retained', () => {
    for (const type of ['AWS::DynamoDB::Table', 'AWS::SQS::Queue', 'AWS::SecretsManager::Secret']) {
      for (const [id, resource] of Object.entries(main.stateful.findResources(type))) {
        expect(resource.DeletionPolicy, `${id} DeletionPolicy`).toBe('Retain');
        expect(resource.UpdateReplacePolicy, `${id} UpdateReplacePolicy`).toBe('Retain');
      }
    }
  });
});

describe('stateless stack', () => {
  it('holds no data resources', () => {
    for (const type of ['AWS::DynamoDB::Table', 'AWS::SQS::Queue', 'AWS::SecretsManager::Secret']) {
      main.stateless.resourceCountIs(type, 0);
    }
  });

  it('functions run Node 22 or newer on arm64', () => {
    const functions = Object.values(main.stateless.findResources('AWS::Lambda::Function'));
    expect(functions).toHaveLength(3);
    for (const fn of functions) {
      const version = Number(/^nodejs(\d+)\.x$/.exec(String(props(fn).Runtime))?.[1]);
      expect(version).toBeGreaterThanOrEqual(22);
      expect(props(fn).Architectures).toEqual(['arm64']);
    }
  });

  it('agent-facing bundles carry the SSM script', () => {
    const assetDir = (prefix: string) => {
      const [, fn] = Object.entries(main.stateless.findResources('AWS::Lambda::Function')).find(([id]) =>
        id.startsWith(prefix),
      ) as [string, Json];
      const key = String((props(fn).Code as { S3Key: string }).S3Key);
      return join(main.app.outdir, `asset.${key.replace(/\.zip$/, '')}`);
    };
    const script = readFileSync(new URL('../../agent/ssm/apply-vcl.sh', import.meta.url), 'utf8');

    expect(readFileSync(join(assetDir('ReloadFunction'), 'apply-vcl.sh'), 'utf8')).toBe(script);
    expect(readFileSync(join(assetDir('ApiFunction'), 'apply-vcl.sh'), 'utf8')).toBe(script);
    expect(existsSync(join(assetDir('ReconcileFunction'), 'apply-vcl.sh'))).toBe(false);
  });

  it('queue visibility is 6x the reload timeout', () => {
    const visibility = props(main.stateful.toJSON().Resources[taskQueueId]).VisibilityTimeout as number;
    const [, reload] = Object.entries(main.stateless.findResources('AWS::Lambda::Function')).find(([id]) =>
      id.startsWith('ReloadFunction'),
    ) as [string, Json];
    expect(visibility).toBeGreaterThanOrEqual(6 * (props(reload).Timeout as number));
  });

  it('synth fails when visibility is too short', () => {
    const app = new App({ outdir: tempOutdir(), context: CDK_CONTEXT });
    const { stateful } = main.stacks;
    expect(
      () =>
        new StatelessStack(app, 'TooShort', {
          table: stateful.table,
          taskQueue: stateful.taskQueue,
          deadLetterQueue: stateful.deadLetterQueue,
          agentToken: stateful.agentToken,
          taskQueueVisibilityTimeout: Duration.seconds(60),
        }),
    ).toThrow(/visibility timeout 60 s is below 6 × the reload function timeout/);
  });

  it('event source reports batch item failures', () => {
    const [, mapping] = onlyResource(main.stateless, 'AWS::Lambda::EventSourceMapping');
    const resolved = resolveReferences(props(mapping), main.stateful) as Json;
    expect(resolved.EventSourceArn).toEqual({ 'Fn::GetAtt': [taskQueueId, 'Arn'] });
    expect(resolved.FunctionResponseTypes).toEqual(['ReportBatchItemFailures']);
    expect(resolved.ScalingConfig).toEqual({ MaximumConcurrency: 5 });
    expect(String((resolved.FunctionName as { Ref: string }).Ref)).toMatch(/^ReloadFunction/);
  });

  it('reconciler runs every minute', () => {
    const [, rule] = onlyResource(main.stateless, 'AWS::Events::Rule');
    expect(props(rule).ScheduleExpression).toBe('rate(1 minute)');
    const [target] = props(rule).Targets as { Arn: { 'Fn::GetAtt': string[] } }[];
    expect(target?.Arn['Fn::GetAtt'][0]).toMatch(/^ReconcileFunction/);
  });
});

describe('IAM', () => {
  const functionRoles = ['ApiFunctionRole', 'ReloadFunctionRole', 'ReconcileFunctionRole'];

  it('table access is scoped to the table', () => {
    for (const role of [...functionRoles, 'SyncRequestRole']) {
      const statements = statementFor(statementsOf(main, role), 'dynamodb:GetItem');
      expect(statements, role).toHaveLength(1);
      expect(statements[0]?.Resource, role).toEqual({ 'Fn::GetAtt': [tableId, 'Arn'] });
    }
  });

  it('queue access is scoped to the task queue', () => {
    for (const [role, action] of [
      ['ApiFunctionRole', 'sqs:SendMessage'],
      ['ReconcileFunctionRole', 'sqs:SendMessage'],
      ['ReloadFunctionRole', 'sqs:ReceiveMessage'],
    ] as const) {
      const statements = statementFor(statementsOf(main, role), action);
      expect(statements, role).toHaveLength(1);
      expect(statements[0]?.Resource, role).toEqual({ 'Fn::GetAtt': [taskQueueId, 'Arn'] });
    }
  });

  it('StartSyncExecution is scoped to the state machine', () => {
    const [stateMachineId] = onlyResource(main.stateless, 'AWS::StepFunctions::StateMachine');
    const statements = statementsOf(main, 'RestApiStartSyncExecutionRole');
    expect(statements).toHaveLength(1);
    expect(statements[0]?.Resource).toEqual({ Ref: stateMachineId });
    expect(actionsOf(statements[0] as Statement)).toEqual(['states:StartSyncExecution']);
  });

  it('API function starts no executions', () => {
    const actions = statementsOf(main, 'ApiFunctionRole').flatMap(actionsOf);
    expect(actions.filter((action) => action.startsWith('states:'))).toEqual([]);
  });

  it('state machine invokes only the API function', () => {
    const [apiFunctionId] = Object.keys(main.stateless.findResources('AWS::Lambda::Function')).filter((id) =>
      id.startsWith('ApiFunction'),
    );
    const statements = statementFor(statementsOf(main, 'SyncRequestRole'), 'lambda:InvokeFunction');
    expect(statements).toHaveLength(1);
    const resources = [statements[0]?.Resource].flat();
    expect(resources[0]).toEqual({ 'Fn::GetAtt': [apiFunctionId, 'Arn'] });
    expect(JSON.stringify(resources.slice(1))).not.toContain('"*"');
  });

  it('secret access is scoped to the agent token', () => {
    const [secretId] = onlyResource(main.stateful, 'AWS::SecretsManager::Secret');
    const statements = statementFor(
      statementsOf(main, 'ReloadFunctionRole'),
      'secretsmanager:GetSecretValue',
    );
    expect(statements).toHaveLength(1);
    expect(statements[0]?.Resource).toEqual({ Ref: secretId });
  });

  it('SendCommand is scoped to the document and tagged instances', () => {
    const statements = statementFor(statementsOf(main, 'ReloadFunctionRole'), 'ssm:SendCommand');
    expect(statements).toHaveLength(2);
    const [document, instances] = statements as [Statement, Statement];
    expect(flatten(document.Resource)).toBe(
      'arn:<AWS::Partition>:ssm:<AWS::Region>::document/AWS-RunShellScript',
    );
    expect(document.Condition).toBeUndefined();
    expect(flatten(instances.Resource)).toBe(
      'arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:instance/*',
    );
    expect(instances.Condition).toEqual({ StringEquals: { 'ssm:resourceTag/vaas:managed': 'true' } });
  });

  it('grants "*" only where AWS requires it', () => {
    const allowedOnAnyResource = new Set([
      'ssm:GetCommandInvocation',
      'ssm:CancelCommand',
      // Step Functions log delivery, granted by CDK for the state machine's log group.
      'logs:CreateLogDelivery',
      'logs:DeleteLogDelivery',
      'logs:DescribeLogGroups',
      'logs:DescribeResourcePolicies',
      'logs:GetLogDelivery',
      'logs:ListLogDeliveries',
      'logs:PutResourcePolicy',
      'logs:UpdateLogDelivery',
    ]);
    for (const role of [...functionRoles, 'SyncRequestRole']) {
      for (const statement of statementsOf(main, role)) {
        if (statement.Resource !== '*') continue;
        for (const action of actionsOf(statement))
          expect(allowedOnAnyResource, `${role} ${action}`).toContain(action);
      }
    }
  });
});

describe('API', () => {
  it('every method requires IAM authorization', () => {
    const methods = Object.values(main.stateless.findResources('AWS::ApiGateway::Method'));
    expect(methods.map((method) => props(method).HttpMethod).sort()).toEqual([
      'DELETE',
      'GET',
      'PATCH',
      'POST',
    ]);
    for (const method of methods) expect(props(method).AuthorizationType).toBe('AWS_IAM');
  });

  it('sync wait ends before the integration timeout', () => {
    const methods = Object.values(main.stateless.findResources('AWS::ApiGateway::Method'));
    const waitTimeout = syncRequestDefinition({
      tableName: 'vaas',
      apiFunctionArn: 'api',
      ...SYNC_WAIT_SETTINGS,
    }).TimeoutSeconds;
    for (const method of methods) {
      const timeoutMs = (props(method).Integration as Json).TimeoutInMillis;
      expect(timeoutMs).toBe(API_INTEGRATION_TIMEOUT.toMilliseconds());
      expect(waitTimeout * 1000).toBeLessThan(timeoutMs as number);
    }
  });

  it('stage is throttled and writes access logs', () => {
    const [, stage] = onlyResource(main.stateless, 'AWS::ApiGateway::Stage');
    const [setting] = props(stage).MethodSettings as Json[];
    expect(setting?.ThrottlingRateLimit).toBeGreaterThan(0);
    expect(setting?.ThrottlingBurstLimit).toBeGreaterThan(0);
    expect(setting?.LoggingLevel).toBe('ERROR');
    expect(setting?.DataTraceEnabled).toBe(false);
    expect(JSON.stringify((props(stage).AccessLogSetting as Json).DestinationArn)).toContain(
      'RestApiAccessLogs',
    );
  });

  it('write methods validate the JSON body', () => {
    const methods = Object.values(main.stateless.findResources('AWS::ApiGateway::Method'));
    const withBody = methods.filter((item) => ['POST', 'PATCH'].includes(String(props(item).HttpMethod)));
    expect(withBody).toHaveLength(2);
    for (const method of withBody) {
      expect(Object.keys(props(method).RequestModels as Json)).toEqual(['application/json']);
      expect(props(method).RequestValidatorId).toBeDefined();
    }
  });
});

describe('sync-request state machine', () => {
  it('deploys the local definition', () => {
    const [, stateMachine] = onlyResource(main.stateless, 'AWS::StepFunctions::StateMachine');
    expect(props(stateMachine).StateMachineType).toBe('EXPRESS');

    const tableName = 'TABLE_NAME_FROM_STATEFUL_STACK';
    const apiFunctionArn = 'API_FUNCTION_ARN';
    const [apiFunctionId] = Object.keys(main.stateless.findResources('AWS::Lambda::Function')).filter((id) =>
      id.startsWith('ApiFunction'),
    );
    const joined = resolveReferences(props(stateMachine).DefinitionString, main.stateful) as {
      'Fn::Join': [string, unknown[]];
    };
    const parts = joined['Fn::Join'][1].map((part) => {
      if (typeof part === 'string') return part;
      if (JSON.stringify(part) === JSON.stringify({ Ref: tableId })) return tableName;
      expect(part).toEqual({ 'Fn::GetAtt': [apiFunctionId, 'Arn'] });
      return apiFunctionArn;
    });
    const local = syncRequestDefinition({ tableName, apiFunctionArn, ...SYNC_WAIT_SETTINGS });
    expect(parts.join('')).toBe(JSON.stringify(local));
  });

  it('writes start it and reads reach the function', () => {
    const methods = Object.values(main.stateless.findResources('AWS::ApiGateway::Method'));
    for (const method of methods) {
      const integration = props(method).Integration as Json;
      if (props(method).HttpMethod === 'GET') {
        expect(integration.Type).toBe('AWS_PROXY');
        continue;
      }
      expect(integration.Type).toBe('AWS');
      expect(JSON.stringify(integration.Uri)).toContain(':sync-states.states:action/StartSyncExecution');
      expect(integration.PassthroughBehavior).toBe('NEVER');
      expect(JSON.stringify(integration.Credentials)).toContain('RestApiStartSyncExecutionRole');
    }
  });

  it('logs every execution', () => {
    const [, stateMachine] = onlyResource(main.stateless, 'AWS::StepFunctions::StateMachine');
    const logging = props(stateMachine).LoggingConfiguration as Json;
    expect(logging.Level).toBe('ALL');
    expect(logging.IncludeExecutionData).toBe(false);
  });
});

describe('alarms', () => {
  it('dead-letter alarm watches the DLQ', () => {
    const alarms = Object.values(main.stateless.findResources('AWS::CloudWatch::Alarm')).map(
      (alarm) => resolveReferences(props(alarm), main.stateful) as Json,
    );
    const deadLetters = alarms.find((alarm) => alarm.MetricName === 'ApproximateNumberOfMessagesVisible');
    expect(deadLetters?.Dimensions).toEqual([
      { Name: 'QueueName', Value: { 'Fn::GetAtt': [deadLetterQueueId, 'QueueName'] } },
    ]);
    expect(deadLetters?.Threshold).toBe(0);
    expect(deadLetters?.ComparisonOperator).toBe('GreaterThanThreshold');
  });

  it('oldest task alarm watches the task queue', () => {
    const alarms = Object.values(main.stateless.findResources('AWS::CloudWatch::Alarm')).map(
      (alarm) => resolveReferences(props(alarm), main.stateful) as Json,
    );
    const oldest = alarms.find((alarm) => alarm.MetricName === 'ApproximateAgeOfOldestMessage');
    expect(oldest?.Dimensions).toEqual([
      { Name: 'QueueName', Value: { 'Fn::GetAtt': [taskQueueId, 'QueueName'] } },
    ]);
    expect(oldest?.Threshold).toBeGreaterThan(0);
  });

  it('reload failure alarm matches the emitted metric', () => {
    const write = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    let lines: string[];
    try {
      createMetricsObserver().reloaded('cluster-1', 10, false);
      lines = write.mock.calls.map(([chunk]) => String(chunk));
    } finally {
      write.mockRestore();
    }
    const emitted = lines.map((line) => JSON.parse(line));
    const record = emitted.find((line) => 'ReloadFailures' in line);
    const [directive] = record._aws.CloudWatchMetrics;
    const dimensions = (directive.Dimensions[0] as string[]).map((name) => ({
      Name: name,
      Value: record[name],
    }));

    const [, alarm] = Object.entries(main.stateless.findResources('AWS::CloudWatch::Alarm')).find(
      ([, item]) => props(item).MetricName === 'ReloadFailures',
    ) as [string, Json];
    expect(props(alarm).Namespace).toBe(directive.Namespace);
    expect(props(alarm).Dimensions).toEqual(dimensions);
    expect(props(alarm).Threshold).toBe(0);
  });
});

describe('cdk-nag', () => {
  it('reports no unacknowledged findings', () => {
    const report = new AwsSolutionsChecks().validateScope(main.app);
    expect(report.violations.map((violation) => violation.ruleName)).toEqual([]);
  });

  it('reload VPC from context passes too', () => {
    const withVpc = synthesize({
      vpcId: 'vpc-0123456789abcdef0',
      subnetIds: 'subnet-0123456789abcdef0,subnet-0fedcba9876543210',
      securityGroupIds: 'sg-0123456789abcdef0',
    });
    const report = new AwsSolutionsChecks().validateScope(withVpc.app);
    expect(report.violations.map((violation) => violation.ruleName)).toEqual([]);

    const functions = Object.entries(withVpc.stateless.findResources('AWS::Lambda::Function'));
    // The API function reaches the agents too (compile checks, previews, health, purges).
    const inVpc = functions.filter(([, fn]) => props(fn).VpcConfig !== undefined).map(([id]) => id);
    expect(inVpc.map((id) => id.replace(/[0-9A-F]{8}$/, '')).sort()).toEqual([
      'ApiFunction',
      'ReloadFunction',
    ]);
    for (const prefix of ['ApiFunction', 'ReloadFunction']) {
      const [, fn] = functions.find(([id]) => id.startsWith(prefix)) as [string, Json];
      expect(props(fn).VpcConfig).toEqual({
        SubnetIds: ['subnet-0123456789abcdef0', 'subnet-0fedcba9876543210'],
        SecurityGroupIds: ['sg-0123456789abcdef0'],
      });
    }
  });
});

describe('context values', () => {
  it('rejects subnets without vpcId', () => {
    const app = new App({
      outdir: tempOutdir(),
      context: { ...CDK_CONTEXT, subnetIds: 'subnet-0123456789abcdef0' },
    });
    expect(() => buildVaasApp(app)).toThrow(/subnetIds and securityGroupIds need vpcId/);
  });

  it('rejects a malformed vpcId', () => {
    const app = new App({
      outdir: tempOutdir(),
      context: { ...CDK_CONTEXT, vpcId: 'my-vpc', subnetIds: 'subnet-0123456789abcdef0' },
    });
    expect(() => buildVaasApp(app)).toThrow(/invalid context vpcId="my-vpc"/);
  });

  it('rejects vpcId without subnets', () => {
    const app = new App({
      outdir: tempOutdir(),
      context: { ...CDK_CONTEXT, vpcId: 'vpc-0123456789abcdef0' },
    });
    expect(() => buildVaasApp(app)).toThrow(/vpcId needs subnetIds/);
  });
});
