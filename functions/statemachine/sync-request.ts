// The Express state machine behind every write (POST, PATCH, DELETE). API Gateway starts it with
// StartSyncExecution, so no Lambda runs while a synchronous caller waits for the reload. The
// machine invokes the API function to save the change (milliseconds) and polls the task in
// DynamoDB. Then it invokes the function once more to build the final response. CDK deploys this
// definition and the local runtime runs the same object with aws-local-stepfunctions.

export interface SyncRequestSettings {
  tableName: string;
  /** ARN (or name) of the API function, which also serves the machine's two Lambda tasks. */
  apiFunctionArn: string;
  /** Pause between two reads of the task, in whole seconds (a Wait state's unit). */
  pollSeconds: number;
  /** Reads of the task before the wait gives up and the caller gets 202. */
  maxPolls: number;
}

export const SAVE_STATE = 'SaveChange';
export const GET_TASK_STATE = 'GetTask';
export const WAIT_STATE = 'WaitForReload';
export const FINISH_STATE = 'BuildResponse';

/** The response the machine returns when the save step failed and its outcome is unknown. */
export const SAVE_FAILED_RESPONSE = {
  statusCode: 500,
  headers: { 'Content-Type': 'application/problem+json' },
  body: JSON.stringify({
    type: 'about:blank',
    title: 'Internal Server Error',
    status: 500,
    detail:
      'the request failed while saving; the change may or may not be saved, so read the resource before retrying',
  }),
};

/**
 * Returns the Amazon States Language definition. Input: a SyncRequest (see functions/api/sync.ts).
 * Output: an API Gateway proxy result `{ statusCode, headers, body }`.
 */
export function syncRequestDefinition(settings: SyncRequestSettings) {
  const invoke = (payload: Record<string, unknown>) => ({
    Type: 'Task',
    Resource: 'arn:aws:states:::lambda:invoke',
    Parameters: { FunctionName: settings.apiFunctionArn, Payload: payload },
  });

  return {
    Comment: 'Saves a vaas change, then waits until every affected cluster reloaded',
    // A backstop above the polling budget, with room for the two Lambda tasks; the polls end first.
    TimeoutSeconds: settings.pollSeconds * settings.maxPolls + 5,
    StartAt: SAVE_STATE,
    States: {
      [SAVE_STATE]: {
        ...invoke({ action: 'save', 'request.$': '$' }),
        OutputPath: '$.Payload',
        // Only a throttled invoke is retried: any other error may come after the save ran.
        Retry: [
          {
            ErrorEquals: ['Lambda.TooManyRequestsException'],
            IntervalSeconds: 1,
            MaxAttempts: 3,
            BackoffRate: 2,
          },
        ],
        Catch: [{ ErrorEquals: ['States.ALL'], Next: 'SaveFailed' }],
        Next: 'NeedsWait',
      },
      SaveFailed: { Type: 'Pass', Result: SAVE_FAILED_RESPONSE, End: true },
      NeedsWait: {
        Type: 'Choice',
        Choices: [{ Variable: '$.wait', BooleanEquals: true, Next: 'StartPolling' }],
        Default: 'Respond',
      },
      Respond: { Type: 'Pass', OutputPath: '$.response', End: true },
      StartPolling: { Type: 'Pass', Result: { polls: 0 }, ResultPath: '$.counter', Next: GET_TASK_STATE },
      [GET_TASK_STATE]: {
        Type: 'Task',
        Resource: 'arn:aws:states:::dynamodb:getItem',
        Parameters: {
          TableName: settings.tableName,
          Key: { pk: { 'S.$': "States.Format('task#{}', $.taskId)" }, sk: { S: 'task' } },
          ConsistentRead: true,
          ProjectionExpression: 'pendingCount',
        },
        ResultSelector: { 'pendingCount.$': '$.Item.pendingCount.N' },
        ResultPath: '$.task',
        Retry: [{ ErrorEquals: ['States.TaskFailed'], IntervalSeconds: 1, MaxAttempts: 3, BackoffRate: 2 }],
        Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: 'TimedOut' }],
        Next: 'IsFinished',
      },
      IsFinished: {
        Type: 'Choice',
        Choices: [
          { Variable: '$.task.pendingCount', StringEquals: '0', Next: FINISH_STATE },
          { Variable: '$.counter.polls', NumericGreaterThanEquals: settings.maxPolls, Next: 'TimedOut' },
        ],
        Default: WAIT_STATE,
      },
      [WAIT_STATE]: { Type: 'Wait', Seconds: settings.pollSeconds, Next: 'CountPoll' },
      CountPoll: {
        Type: 'Pass',
        Parameters: { 'polls.$': 'States.MathAdd($.counter.polls, 1)' },
        ResultPath: '$.counter',
        Next: GET_TASK_STATE,
      },
      [FINISH_STATE]: {
        ...invoke({ action: 'finish', 'taskId.$': '$.taskId', 'successResponse.$': '$.successResponse' }),
        OutputPath: '$.Payload',
        Retry: [{ ErrorEquals: ['States.ALL'], IntervalSeconds: 1, MaxAttempts: 3, BackoffRate: 2 }],
        Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: 'TimedOut' }],
        End: true,
      },
      // The change is saved but not known to be live, so the response is 202 and the caller polls the task.
      TimedOut: { Type: 'Pass', OutputPath: '$.acceptedResponse', End: true },
    },
  };
}
