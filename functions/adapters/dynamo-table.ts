import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, QueryCommand, type QueryCommandInput } from '@aws-sdk/lib-dynamodb';

// One table contains everything, keyed by `pk` and `sk`. Configuration entities share one partition
// per kind (`pk` = kind, `sk` = id), so a reload lists them with strongly consistent queries on
// the base table: a GSI read could miss a change saved just before the task.
// NOTE: one partition per kind caps writes to a kind at about 1,000 items a second, which is far
// above what a control plane writes. Large fleets would shard the partition key.

export const KEY = {
  entity: (kind: string, id: string) => ({ pk: kind, sk: id }),
  name: (kind: string, name: string) => ({ pk: `name#${kind}`, sk: name }),
  task: (id: string) => ({ pk: `task#${id}`, sk: 'task' }),
  outbox: (taskId: string) => ({ pk: 'outbox', sk: taskId }),
  openTask: (taskId: string) => ({ pk: 'open-task', sk: taskId }),
  periodicJob: (job: string) => ({ pk: 'periodic-job', sk: job }),
};

export interface Table {
  name: string;
  client: DynamoDBDocumentClient;
}

export function createTable(tableName: string, base: DynamoDBClient): Table {
  const client = DynamoDBDocumentClient.from(base, {
    marshallOptions: { removeUndefinedValues: true },
  });
  return { name: tableName, client };
}

/** Runs a strongly consistent query and follows every page. */
export async function queryAll(table: Table, input: Omit<QueryCommandInput, 'TableName'>) {
  const items: Record<string, unknown>[] = [];
  let startKey: Record<string, unknown> | undefined;

  do {
    const page = await table.client.send(
      new QueryCommand({
        ...input,
        TableName: table.name,
        ConsistentRead: true,
        ExclusiveStartKey: startKey,
      }),
    );
    items.push(...(page.Items ?? []));
    startKey = page.LastEvaluatedKey;
  } while (startKey);

  return items;
}

/** Removes the key attributes from a stored item. */
export function stripKeys<T>(item: Record<string, unknown>): T {
  const { pk: _pk, sk: _sk, ...rest } = item;
  return rest as T;
}

export function isConditionFailure(error: unknown): boolean {
  return error instanceof Error && error.name === 'ConditionalCheckFailedException';
}
