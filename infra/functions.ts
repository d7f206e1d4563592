import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Duration, Validations } from 'aws-cdk-lib';
import type { ISecurityGroup, ISubnet, IVpc } from 'aws-cdk-lib/aws-ec2';
import { ManagedPolicy, PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Architecture, Runtime } from 'aws-cdk-lib/aws-lambda';
import { type BundlingOptions, LogLevel, NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';

const PROJECT_ROOT = fileURLToPath(new URL('..', import.meta.url));

/** The Node.js version that the test suite runs on (the node@22 devDependency). */
export const FUNCTION_RUNTIME = Runtime.NODEJS_22_X;

export interface VaasFunctionProps {
  /** Entry file relative to the project root, exporting `handler`. */
  entry: string;
  /** Powertools service name, the `service` key of every log line. */
  serviceName: string;
  timeout: Duration;
  memorySize: number;
  environment: Record<string, string>;
  /** Project files copied next to index.mjs in the bundle, for example a script the handler reads. */
  bundledFiles?: string[];
  network?: { vpc: IVpc; subnets: ISubnet[]; securityGroups: ISecurityGroup[] };
}

/**
 * Creates one handler as an arm64 NodejsFunction with its own log group. Its role may write only
 * to that log group, and callers add the function's other permissions.
 */
export function vaasFunction(scope: Construct, id: string, props: VaasFunctionProps): NodejsFunction {
  const logGroup = new LogGroup(scope, `${id}Logs`, { retention: RetentionDays.ONE_MONTH });
  const role = new Role(scope, `${id}Role`, { assumedBy: new ServicePrincipal('lambda.amazonaws.com') });
  role.addToPolicy(
    new PolicyStatement({
      actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
      resources: [logGroup.logGroupArn],
    }),
  );
  if (props.network) addVpcAccess(role);

  const fn = new NodejsFunction(scope, id, {
    entry: `${PROJECT_ROOT}${props.entry}`,
    handler: 'handler',
    projectRoot: PROJECT_ROOT,
    depsLockFilePath: `${PROJECT_ROOT}package-lock.json`,
    runtime: FUNCTION_RUNTIME,
    architecture: Architecture.ARM_64,
    timeout: props.timeout,
    memorySize: props.memorySize,
    role,
    logGroup,
    environment: {
      POWERTOOLS_SERVICE_NAME: props.serviceName,
      POWERTOOLS_LOG_LEVEL: 'INFO',
      NODE_OPTIONS: '--enable-source-maps',
      ...props.environment,
    },
    bundling: bundlingOptions(props.bundledFiles ?? []),
    ...(props.network && {
      vpc: props.network.vpc,
      vpcSubnets: { subnets: props.network.subnets },
      securityGroups: props.network.securityGroups,
    }),
  });

  Validations.of(fn).acknowledge({
    id: 'AwsSolutions-L1',
    reason:
      'Pinned to nodejs22.x because the test suite and the local runtime run on Node 22 (the node@22 ' +
      'devDependency); raise both together.',
  });
  return fn;
}

/**
 * Bundles the handler with the local esbuild into one ESM file. The AWS SDK is bundled too, so
 * the deployed SDK is the version the tests ran with.
 */
function bundlingOptions(bundledFiles: string[]): BundlingOptions {
  return {
    format: OutputFormat.ESM,
    target: 'node22',
    minify: true,
    sourceMap: true,
    mainFields: ['module', 'main'],
    externalModules: [],
    logLevel: LogLevel.WARNING,
    // Bundled CommonJS dependencies call require(), which an ES module has no binding for.
    banner:
      "import { createRequire as vaasCreateRequire } from 'node:module'; const require = vaasCreateRequire(import.meta.url);",
    commandHooks: {
      beforeBundling: () => [],
      beforeInstall: () => [],
      afterBundling: (inputDir, outputDir) =>
        bundledFiles.map((file) => `cp "${inputDir}/${file}" "${outputDir}/${basename(file)}"`),
    },
  };
}

/** Grants the ENI permissions that Lambda needs to attach a function to a VPC. */
function addVpcAccess(role: Role): void {
  role.addManagedPolicy(
    ManagedPolicy.fromAwsManagedPolicyName('service-role/AWSLambdaVPCAccessExecutionRole'),
  );
  Validations.of(role).acknowledge({
    id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole]',
    reason:
      'AWSLambdaVPCAccessExecutionRole is the policy that Lambda documents for VPC functions; its ' +
      'network interface actions need "*" because Lambda creates the interfaces at run time.',
  });
}

/** The DynamoDB actions that the adapters in functions/adapters use, and nothing else. */
export const TABLE_ACTIONS = [
  'dynamodb:GetItem',
  'dynamodb:PutItem',
  'dynamodb:UpdateItem',
  'dynamodb:DeleteItem',
  'dynamodb:Query',
];
