import { type DynamoDBClient, GetItemCommand, type GetItemCommandInput } from '@aws-sdk/client-dynamodb';
import type { APIGatewayProxyResult, Context } from 'aws-lambda';
import { StateMachine } from 'aws-local-stepfunctions';
import type { SyncRequest } from '../functions/api/sync.js';
import { logger } from '../functions/shared/logger.js';
import {
  FINISH_STATE,
  GET_TASK_STATE,
  SAVE_FAILED_RESPONSE,
  SAVE_STATE,
  type SyncRequestSettings,
  syncRequestDefinition,
  WAIT_STATE,
} from '../functions/statemachine/sync-request.js';

type ApiFunction = (event: never, context: Context) => Promise<unknown>;

export interface SyncRunner {
  run(request: SyncRequest, context: Context): Promise<APIGatewayProxyResult>;
}

/**
 * Runs the sync-request definition that CDK deploys, in process, as API Gateway's
 * StartSyncExecution integration does on AWS. aws-local-stepfunctions has no Lambda or DynamoDB
 * integration here, so each Task state is served locally: the Lambda tasks call the API
 * function in this process, and GetItem runs against the local table.
 */
export function createLocalSyncRunner(
  dynamo: DynamoDBClient,
  apiFunction: ApiFunction,
  settings: Omit<SyncRequestSettings, 'apiFunctionArn'> & { pollMs: number },
): SyncRunner {
  const definition = syncRequestDefinition({ ...settings, apiFunctionArn: 'vaas-api-local' });
  const machine = new StateMachine(definition as never, {
    validationOptions: { checkArn: true, checkPaths: true },
  });

  return {
    async run(request, context) {
      // A Lambda task's result is the invoke response, with the function's result in Payload.
      const invoke = async (input: unknown) => {
        const { Payload } = input as { Payload: unknown };
        return { Payload: await apiFunction(Payload as never, context), StatusCode: 200 } as never;
      };
      const getItem = async (input: unknown) => {
        const result = await dynamo.send(new GetItemCommand(input as GetItemCommandInput));
        return JSON.parse(JSON.stringify({ Item: result.Item ?? null }));
      };

      const execution = machine.run(request as never, {
        overrides: {
          taskResourceLocalHandlers: {
            [SAVE_STATE]: invoke,
            [FINISH_STATE]: invoke,
            [GET_TASK_STATE]: getItem,
          },
          waitTimeOverrides: { [WAIT_STATE]: settings.pollMs },
        },
      });
      try {
        return (await execution.result) as unknown as APIGatewayProxyResult;
      } catch (error) {
        logger.error('sync-request execution failed', { requestId: request.requestId, error });
        return SAVE_FAILED_RESPONSE;
      }
    },
  };
}
