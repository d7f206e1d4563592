// API Gateway's mapping templates for the writes: the request template turns an HTTP request into
// a StartSyncExecution call of the sync-request state machine, and the response template turns
// the execution's output back into the HTTP response. Both are Velocity (VTL) templates.
import type { Duration } from 'aws-cdk-lib';
import {
  AwsIntegration,
  type IModel,
  type IRequestValidator,
  type IResource,
  PassthroughBehavior,
} from 'aws-cdk-lib/aws-apigateway';
import { PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import type { IStateMachine } from 'aws-cdk-lib/aws-stepfunctions';
import type { Construct } from 'constructs';

/**
 * Returns the request template. Every value a client controls (path, body, Content-Type, Prefer)
 * is base64-encoded, because `$util.escapeJavaScript` escapes a single quote as `\'`, which is not
 * valid JSON. Header names are matched without regard to case, as HTTP requires.
 */
export function syncRequestTemplate(stateMachineArn: string): string {
  return [
    '#set($contentType = "")',
    '#set($prefer = "")',
    '#foreach($name in $input.params().header.keySet())',
    '#if($name.toLowerCase() == "content-type")#set($contentType = $input.params().header.get($name))#end',
    '#if($name.toLowerCase() == "prefer")#set($prefer = $input.params().header.get($name))#end',
    '#end',
    '#set($path = "/" + $input.params().path.get("proxy"))',
    '{',
    `  "stateMachineArn": "${stateMachineArn}",`,
    '  "input": "{\\"httpMethod\\":\\"$context.httpMethod\\",\\"requestId\\":\\"$context.requestId\\",' +
      '\\"path\\":\\"$util.base64Encode($path)\\",\\"body\\":\\"$util.base64Encode($input.body)\\",' +
      '\\"contentType\\":\\"$util.base64Encode($contentType)\\",\\"prefer\\":\\"$util.base64Encode($prefer)\\",' +
      '\\"caller\\":\\"$util.base64Encode($context.identity.userArn)\\"}"',
    '}',
  ].join('\n');
}

/** Headers that the API function sets; the response template copies each one that is present. */
export const RESPONSE_HEADERS = ['Content-Type', 'Location', 'Preference-Applied', 'Allow', 'Link'];

/**
 * Returns the response template. A finished execution's output is an API Gateway proxy result
 * `{ statusCode, headers, body }`. An execution that did not succeed (it hit its own timeout, or
 * Step Functions failed) returns 504: the change may be saved, so the caller must not assume
 * either outcome.
 */
export function syncResponseTemplate(): string {
  const copyHeaders = RESPONSE_HEADERS.map(
    (name) =>
      `#if($response.headers.get("${name}"))#set($context.responseOverride.header.${name} = $response.headers.get("${name}"))#end`,
  );
  return [
    '#set($execution = $util.parseJson($input.body))',
    '#if($execution.status == "SUCCEEDED")',
    '#set($response = $util.parseJson($execution.output))',
    '#set($context.responseOverride.status = $response.statusCode)',
    ...copyHeaders,
    '$response.body',
    '#else',
    '#set($context.responseOverride.status = 504)',
    '#set($context.responseOverride.header.Content-Type = "application/problem+json")',
    '{"type":"about:blank","title":"Gateway Timeout","status":504,' +
      '"detail":"the request did not finish; the change may be saved, so read the resource or its task before retrying",' +
      '"requestId":"$context.requestId"}',
    '#end',
  ].join('\n');
}

export interface WriteMethodOptions {
  stateMachine: IStateMachine;
  timeout: Duration;
  validator: IRequestValidator;
  /** Model that POST and PATCH bodies must match; DELETE has no body. */
  bodyModel: IModel;
}

/**
 * Adds POST, PATCH and DELETE as a Step Functions StartSyncExecution integration, so no Lambda
 * function is billed while a synchronous caller waits for the reload.
 */
export function addWriteMethods(scope: Construct, resource: IResource, options: WriteMethodOptions): void {
  const role = new Role(scope, 'StartSyncExecutionRole', {
    assumedBy: new ServicePrincipal('apigateway.amazonaws.com'),
  });
  role.addToPolicy(
    new PolicyStatement({
      actions: ['states:StartSyncExecution'],
      resources: [options.stateMachine.stateMachineArn],
    }),
  );

  const integration = new AwsIntegration({
    service: 'states',
    action: 'StartSyncExecution',
    // StartSyncExecution is served by the sync-states endpoint, not by states itself.
    subdomain: 'sync-states',
    integrationHttpMethod: 'POST',
    options: {
      credentialsRole: role,
      timeout: options.timeout,
      // A request without the JSON template (another Content-Type) gets 415 from API Gateway.
      passthroughBehavior: PassthroughBehavior.NEVER,
      // JSON Merge Patch bodies (RFC 7396) are JSON too, and the API function accepts both types.
      requestTemplates: {
        'application/json': syncRequestTemplate(options.stateMachine.stateMachineArn),
        'application/merge-patch+json': syncRequestTemplate(options.stateMachine.stateMachineArn),
      },
      integrationResponses: [
        { statusCode: '200', responseTemplates: { 'application/json': syncResponseTemplate() } },
      ],
    },
  });

  const methodResponses = [{ statusCode: '200' }];
  const requestParameters = { 'method.request.path.proxy': true };
  for (const method of ['POST', 'PATCH']) {
    resource.addMethod(method, integration, {
      requestValidator: options.validator,
      requestParameters,
      requestModels: { 'application/json': options.bodyModel },
      methodResponses,
    });
  }
  resource.addMethod('DELETE', integration, {
    requestValidator: options.validator,
    requestParameters,
    methodResponses,
  });
}
