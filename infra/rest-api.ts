import { type Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import {
  AccessLogFormat,
  AuthorizationType,
  EndpointType,
  JsonSchemaType,
  JsonSchemaVersion,
  LambdaIntegration,
  LogGroupLogDestination,
  MethodLoggingLevel,
  RequestValidator,
  ResponseType,
  RestApi,
} from 'aws-cdk-lib/aws-apigateway';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { IStateMachine } from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { addWriteMethods } from './sync-integration.js';

export interface VaasRestApiProps {
  /** The API function (functions/api/lambda.ts), reached through a Lambda proxy integration for reads. */
  handler: IFunction;
  /** The sync-request state machine that every write starts (functions/statemachine/sync-request.ts). */
  syncRequest: IStateMachine;
  /** Integration timeout of every method; the synchronous wait must end before it. */
  integrationTimeout: Duration;
  /** Steady-state requests per second and burst size of the stage, for all callers together. */
  throttling: { rateLimit: number; burstLimit: number };
  /**
   * Creates the account-wide role that API Gateway needs to write access and execution logs.
   * Set it to false when the account has that role already.
   */
  createAccountLogsRole: boolean;
}

/**
 * The REST API. Every method requires IAM (SigV4) authorization, so AWS SDK scripts and roles
 * with `execute-api:Invoke` on the API call it directly.
 *
 * Request body limit: the API function rejects bodies larger than 1 MiB with 413 and a
 * problem+json body (MAX_BODY_BYTES in functions/api/http.ts). API Gateway has no setting for a
 * smaller limit; its own REST payload quota is 10 MB.
 */
export class VaasRestApi extends Construct {
  readonly api: RestApi;

  constructor(scope: Construct, id: string, props: VaasRestApiProps) {
    super(scope, id);

    const accessLogs = new LogGroup(this, 'AccessLogs', { retention: RetentionDays.ONE_YEAR });
    this.api = new RestApi(this, 'Api', {
      description: 'vaas control plane API',
      endpointTypes: [EndpointType.REGIONAL],
      defaultMethodOptions: { authorizationType: AuthorizationType.IAM },
      cloudWatchRole: props.createAccountLogsRole,
      cloudWatchRoleRemovalPolicy: RemovalPolicy.RETAIN,
      deployOptions: {
        stageName: 'prod',
        throttlingRateLimit: props.throttling.rateLimit,
        throttlingBurstLimit: props.throttling.burstLimit,
        accessLogDestination: new LogGroupLogDestination(accessLogs),
        accessLogFormat: AccessLogFormat.jsonWithStandardFields(),
        loggingLevel: MethodLoggingLevel.ERROR,
        // Request and response bodies stay out of the execution log.
        dataTraceEnabled: false,
        metricsEnabled: true,
      },
    });
    addProblemResponses(this.api);

    const validator = new RequestValidator(this, 'Validator', {
      restApi: this.api,
      validateRequestBody: true,
      validateRequestParameters: true,
    });
    const jsonObject = this.api.addModel('JsonObject', {
      contentType: 'application/json',
      schema: { schema: JsonSchemaVersion.DRAFT4, title: 'JsonObject', type: JsonSchemaType.OBJECT },
    });

    // One proxy resource carries every route; functions/api/routes.ts matches the path.
    const proxy = this.api.root.addResource('{proxy+}');
    const readIntegration = new LambdaIntegration(props.handler, {
      timeout: props.integrationTimeout,
      allowTestInvoke: false,
    });
    proxy.addMethod('GET', readIntegration, {
      requestValidator: validator,
      requestParameters: { 'method.request.path.proxy': true },
    });
    addWriteMethods(this, proxy, {
      stateMachine: props.syncRequest,
      timeout: props.integrationTimeout,
      validator,
      bodyModel: jsonObject,
    });

    suppressNagFindings(this.api);
  }
}

/**
 * Makes API Gateway's own errors (denied signature, throttling, invalid body, integration
 * timeout) problem+json bodies (RFC 9457) like the handler's. The gateway templates cannot see the
 * status code, so these bodies carry no `status` member; the HTTP status line still has it.
 */
function addProblemResponses(api: RestApi): void {
  const template =
    '{"type":"about:blank","title":"$context.error.responseType",' +
    '"detail":$context.error.messageString,"requestId":"$context.requestId"}';

  for (const [id, type] of [
    ['Default4xx', ResponseType.DEFAULT_4XX],
    ['Default5xx', ResponseType.DEFAULT_5XX],
  ] as const) {
    api.addGatewayResponse(id, {
      type,
      responseHeaders: { 'Content-Type': "'application/problem+json'" },
      templates: { 'application/json': template },
    });
  }
}

function suppressNagFindings(api: RestApi): void {
  Validations.of(api).acknowledge(
    {
      id: 'AwsSolutions-COG4',
      reason:
        'Callers are AWS principals (SDK scripts, roles, CI), so methods use IAM (SigV4) authorization ' +
        'instead of a Cognito user pool.',
    },
    {
      id: 'AwsSolutions-APIG3',
      reason:
        'Every request must carry a valid SigV4 signature of a principal in this account and the stage ' +
        'is throttled; a WAF web ACL would add a fixed monthly cost for no additional caller check.',
    },
  );

  const logsRole = api.node.tryFindChild('CloudWatchRole');
  if (logsRole) {
    Validations.of(logsRole).acknowledge({
      id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]',
      reason:
        'AmazonAPIGatewayPushToCloudWatchLogs is the policy that API Gateway documents for its account-level ' +
        'logging role; API Gateway creates the log groups itself, so their names are not known here.',
    });
  }
}
