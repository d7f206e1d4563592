import { type DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { StateMachine } from 'aws-local-stepfunctions';
import { parseExecutionOutput } from '../functions/adapters/sfn-waiter.js';
import type { TaskWaiter } from '../functions/ports.js';
import {
  GET_TASK_STATE,
  type SyncWaitSettings,
  syncWaitDefinition,
  WAIT_STATE,
} from '../functions/statemachine/sync-wait.js';

/**
 * Runs the same sync-wait definition that CDK deploys, in process. aws-local-stepfunctions has no
 * DynamoDB integration, so the GetItem task is served by a real GetItem against the local table.
 */
export function createLocalTaskWaiter(
  dynamo: DynamoDBClient,
  settings: SyncWaitSettings & { pollMs: number },
): TaskWaiter {
  const machine = new StateMachine(syncWaitDefinition(settings) as never, {
    validationOptions: { checkArn: true, checkPaths: true },
  });

  const getItem = async (input: unknown) => {
    const result = await dynamo.send(new GetItemCommand(input as never));
    return JSON.parse(JSON.stringify({ Item: result.Item ?? null }));
  };

  return {
    async wait(taskId) {
      const execution = machine.run(
        { taskId },
        {
          overrides: {
            taskResourceLocalHandlers: { [GET_TASK_STATE]: getItem },
            waitTimeOverrides: { [WAIT_STATE]: settings.pollMs },
          },
        },
      );
      try {
        const output = await execution.result;
        return parseExecutionOutput('SUCCEEDED', JSON.stringify(output), taskId);
      } catch {
        return parseExecutionOutput('FAILED', undefined, taskId);
      }
    },
  };
}
