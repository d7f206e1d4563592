// The Express state machine that a synchronous request waits on. CDK deploys this definition and
// the local runtime runs the same object with aws-local-stepfunctions.

export interface SyncWaitSettings {
  tableName: string;
  /** Pause between two reads of the task, in seconds. */
  pollSeconds: number;
  /** Reads of the task before the wait gives up and the caller gets 202. */
  maxPolls: number;
}

export const GET_TASK_STATE = 'GetTask';
export const WAIT_STATE = 'WaitForReload';

/**
 * Returns the Amazon States Language definition. Input: `{ "taskId": "..." }`. Output:
 * `{ "outcome": "finished" }` once no cluster of the task is pending, or `{ "outcome": "timedOut" }`.
 * The execution-level TimeoutSeconds is a backstop a few seconds above the polling budget.
 */
export function syncWaitDefinition(settings: SyncWaitSettings) {
  return {
    Comment: 'Waits until every cluster of a vaas task finished its reload',
    TimeoutSeconds: Math.ceil(settings.pollSeconds * settings.maxPolls) + 5,
    StartAt: 'Start',
    States: {
      Start: {
        Type: 'Pass',
        Parameters: { 'taskId.$': '$.taskId', polls: 0 },
        Next: GET_TASK_STATE,
      },
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
        Retry: [
          {
            ErrorEquals: [
              'DynamoDB.ProvisionedThroughputExceededException',
              'DynamoDB.InternalServerErrorException',
            ],
            IntervalSeconds: 1,
            MaxAttempts: 3,
            BackoffRate: 2,
          },
        ],
        Next: 'IsFinished',
      },
      IsFinished: {
        Type: 'Choice',
        Choices: [
          { Variable: '$.task.pendingCount', StringEquals: '0', Next: 'Finished' },
          { Variable: '$.polls', NumericGreaterThanEquals: settings.maxPolls, Next: 'TimedOut' },
        ],
        Default: WAIT_STATE,
      },
      [WAIT_STATE]: {
        Type: 'Wait',
        Seconds: settings.pollSeconds,
        Next: 'CountPoll',
      },
      CountPoll: {
        Type: 'Pass',
        Parameters: { 'taskId.$': '$.taskId', 'polls.$': 'States.MathAdd($.polls, 1)' },
        Next: GET_TASK_STATE,
      },
      Finished: { Type: 'Pass', Result: { outcome: 'finished' }, End: true },
      TimedOut: { Type: 'Pass', Result: { outcome: 'timedOut' }, End: true },
    },
  };
}
