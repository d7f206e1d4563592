import { type SFNClient, StartSyncExecutionCommand } from '@aws-sdk/client-sfn';
import type { SyncWaitResult, TaskWaiter } from '../ports.js';
import { logger } from '../shared/logger.js';

/** Waits for a task through the Express state machine's synchronous execution. */
export function createSfnTaskWaiter(client: SFNClient, stateMachineArn: string): TaskWaiter {
  return {
    async wait(taskId) {
      const result = await client.send(
        new StartSyncExecutionCommand({ stateMachineArn, input: JSON.stringify({ taskId }), name: taskId }),
      );
      return parseExecutionOutput(result.status, result.output, taskId);
    },
  };
}

/**
 * Maps a finished execution to the wait's outcome. Anything but a clean `finished` counts as
 * timed out, so the caller gets 202 and polls the task instead of a success that is not known.
 */
export function parseExecutionOutput(
  status: string | undefined,
  output: string | undefined,
  taskId: string,
): SyncWaitResult {
  if (status === 'SUCCEEDED' && output) {
    const parsed = JSON.parse(output) as { outcome?: string };
    if (parsed.outcome === 'finished') return { outcome: 'finished' };
    if (parsed.outcome === 'timedOut') return { outcome: 'timedOut' };
  }
  logger.warn('sync wait ended without a result; answering 202', { taskId, status });
  return { outcome: 'timedOut' };
}
