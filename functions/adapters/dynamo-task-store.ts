import {
  DeleteCommand,
  GetCommand,
  PutCommand,
  UpdateCommand,
  type UpdateCommandInput,
} from '@aws-sdk/lib-dynamodb';
import { NotFoundError } from '../domain/errors.js';
import type { HistoryEntry } from '../domain/history.js';
import type { Task } from '../domain/model.js';
import type { ClusterStateStore, OutboxEntry, TaskStore } from '../ports.js';
import { packJson, unpackJson } from './dynamo-blob.js';
import { isConditionFailure, KEY, queryAll, stripKeys, type Table } from './dynamo-table.js';

/** Tasks stay readable for this long; the table's TTL attribute `expiresAt` removes them after. */
const TASK_RETENTION_SECONDS = 30 * 24 * 3600;

export function createTaskStore(table: Table): TaskStore {
  const store: TaskStore = {
    async putOutbox(entry) {
      // History entries may carry large templates, so they are packed to keep the item under 400 KB.
      const { changes, ...rest } = entry;
      const item = {
        ...KEY.outbox(entry.taskId),
        ...rest,
        changes: changes && (await packJson(table, changes)),
      };
      await table.client.send(new PutCommand({ TableName: table.name, Item: item }));
    },

    async deleteOutbox(taskId) {
      await table.client.send(new DeleteCommand({ TableName: table.name, Key: KEY.outbox(taskId) }));
    },

    async listOutbox() {
      const items = await queryAll(table, {
        KeyConditionExpression: 'pk = :outbox',
        ExpressionAttributeValues: { ':outbox': 'outbox' },
      });
      return Promise.all(
        items.map(async (item) => {
          const { changes, ...entry } = stripKeys<OutboxEntry & { changes?: unknown }>(item);
          if (changes === undefined) return entry;
          return { ...entry, changes: await unpackJson<HistoryEntry[]>(table, changes) };
        }),
      );
    },

    async putTask(task) {
      const expiresAt = Math.floor(Date.parse(task.timestamp) / 1000) + TASK_RETENTION_SECONDS;
      await table.client.send(
        new PutCommand({ TableName: table.name, Item: { ...KEY.task(task.id), ...task, expiresAt } }),
      );
    },

    async getTask(id) {
      const result = await table.client.send(
        new GetCommand({ TableName: table.name, Key: KEY.task(id), ConsistentRead: true }),
      );
      if (!result.Item) return undefined;
      const { expiresAt: _expiresAt, ...task } = stripKeys<Task & { expiresAt?: number }>(result.Item);
      return task;
    },

    async markTaskRunning(taskId, clusterId) {
      await updateUnlessConditionFails(table, {
        Key: KEY.task(taskId),
        UpdateExpression: 'SET #clusters.#cluster.#status = :running',
        ConditionExpression: '#clusters.#cluster.#status = :queued',
        ExpressionAttributeNames: { '#clusters': 'clusters', '#cluster': clusterId, '#status': 'status' },
        ExpressionAttributeValues: { ':running': 'running', ':queued': 'queued' },
      });
    },

    async finishTask(taskId, clusterId, outcome) {
      // The condition makes a redelivered message harmless: pendingCount drops once per cluster.
      const names: Record<string, string> = {
        '#clusters': 'clusters',
        '#cluster': clusterId,
        '#status': 'status',
      };
      const values: Record<string, unknown> = {
        ':status': outcome.status,
        ':finishedAt': outcome.finishedAt,
        ':queued': 'queued',
        ':running': 'running',
        ':one': 1,
      };
      let assignments = '#clusters.#cluster.#status = :status, #clusters.#cluster.finishedAt = :finishedAt';
      if (outcome.error !== undefined) {
        names['#error'] = 'error';
        values[':error'] = outcome.error;
        assignments += ', #clusters.#cluster.#error = :error';
      }

      try {
        const result = await table.client.send(
          new UpdateCommand({
            TableName: table.name,
            Key: KEY.task(taskId),
            UpdateExpression: `SET ${assignments} ADD pendingCount :minusOne`,
            ConditionExpression: '#clusters.#cluster.#status IN (:queued, :running) AND pendingCount >= :one',
            ExpressionAttributeNames: names,
            ExpressionAttributeValues: { ...values, ':minusOne': -1 },
            ReturnValues: 'UPDATED_NEW',
          }),
        );
        if (Number(result.Attributes?.pendingCount) === 0) await store.deleteOpenTask(taskId);
      } catch (error) {
        if (!isConditionFailure(error)) throw error;
      }
    },

    async putOpenTask(taskId, createdAt) {
      await table.client.send(
        new PutCommand({ TableName: table.name, Item: { ...KEY.openTask(taskId), taskId, createdAt } }),
      );
    },

    async listOpenTasks() {
      const items = await queryAll(table, {
        KeyConditionExpression: 'pk = :open',
        ExpressionAttributeValues: { ':open': KEY.openTask('').pk },
      });
      return items.map((item) => ({ taskId: String(item.taskId), createdAt: String(item.createdAt) }));
    },

    async deleteOpenTask(taskId) {
      await table.client.send(new DeleteCommand({ TableName: table.name, Key: KEY.openTask(taskId) }));
    },

    async claimPeriodicRun(job, now, intervalMs) {
      // ISO 8601 timestamps in UTC sort as strings, so the condition compares them directly.
      return updateUnlessConditionFails(table, {
        Key: KEY.periodicJob(job),
        UpdateExpression: 'SET lastRunAt = :now',
        ConditionExpression: 'attribute_not_exists(lastRunAt) OR lastRunAt <= :threshold',
        ExpressionAttributeValues: {
          ':now': now.toISOString(),
          ':threshold': new Date(now.getTime() - intervalMs).toISOString(),
        },
      });
    },
  };
  return store;
}

export function createClusterStateStore(table: Table): ClusterStateStore {
  const clusterKey = (clusterId: string) => KEY.entity('cluster', clusterId);

  async function recordAttempt(clusterId: string, attemptAt: string) {
    await updateUnlessConditionFails(table, {
      Key: clusterKey(clusterId),
      UpdateExpression: 'SET lastAttemptAt = :at',
      ConditionExpression: 'attribute_exists(pk)',
      ExpressionAttributeValues: { ':at': attemptAt },
    });
  }

  return {
    async bumpChangeSeq(clusterId) {
      try {
        const result = await table.client.send(
          new UpdateCommand({
            TableName: table.name,
            Key: clusterKey(clusterId),
            UpdateExpression: 'ADD changeSeq :one',
            ConditionExpression: 'attribute_exists(pk)',
            ExpressionAttributeValues: { ':one': 1 },
            ReturnValues: 'UPDATED_NEW',
          }),
        );
        return Number(result.Attributes?.changeSeq);
      } catch (error) {
        if (isConditionFailure(error)) throw new NotFoundError(`cluster ${clusterId} not found`);
        throw error;
      }
    },

    async recordApplied(clusterId, seq, attemptAt) {
      const raised = await updateUnlessConditionFails(table, {
        Key: clusterKey(clusterId),
        UpdateExpression: 'SET appliedSeq = :seq, lastAttemptAt = :at',
        ConditionExpression: 'attribute_exists(pk) AND appliedSeq < :seq',
        ExpressionAttributeValues: { ':seq': seq, ':at': attemptAt },
      });
      if (!raised) await recordAttempt(clusterId, attemptAt);
    },

    async recordTaskLive(clusterId, taskSeq, taskTimestamp) {
      await updateUnlessConditionFails(table, {
        Key: clusterKey(clusterId),
        UpdateExpression: 'SET reloadTimestamp = :timestamp, reloadTaskSeq = :seq',
        ConditionExpression:
          'attribute_exists(pk) AND (attribute_not_exists(reloadTaskSeq) OR reloadTaskSeq < :seq)',
        ExpressionAttributeValues: { ':timestamp': taskTimestamp, ':seq': taskSeq },
      });
    },

    async recordError(clusterId, error) {
      await updateUnlessConditionFails(table, {
        Key: clusterKey(clusterId),
        UpdateExpression: 'SET errorTimestamp = :timestamp, lastError = :message, lastAttemptAt = :at',
        ConditionExpression: 'attribute_exists(pk)',
        ExpressionAttributeValues: {
          ':timestamp': error.taskTimestamp,
          ':message': error.message,
          ':at': error.attemptAt,
        },
      });
    },

    recordAttempt,
  };
}

/** Runs a conditional update; returns false instead of throwing when the condition fails. */
async function updateUnlessConditionFails(table: Table, input: Omit<UpdateCommandInput, 'TableName'>) {
  try {
    await table.client.send(new UpdateCommand({ ...input, TableName: table.name }));
    return true;
  } catch (error) {
    if (isConditionFailure(error)) return false;
    throw error;
  }
}
