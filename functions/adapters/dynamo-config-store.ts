import { DeleteCommand, GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { ConflictError, NotFoundError } from '../domain/errors.js';
import type { ConfigStore, EntityByKind, EntityKind } from '../ports.js';
import { isConditionFailure, KEY, queryAll, stripKeys, type Table } from './dynamo-table.js';

// Kinds whose `name` is unique. A name is claimed by a guard item (`pk` = name#kind) before the
// entity is written. DynamoDB transactions would make the pair atomic, but the local emulator has
// none, so a guard left behind by a crash is taken over once its owner turns out not to exist.
// A fresh guard may belong to a create still on its way, so only old guards are taken over.
const UNIQUE_NAME_KINDS = new Set<EntityKind>(['cluster', 'director']);
const ORPHANED_GUARD_AGE_MS = 60_000;

export function createConfigStore(table: Table): ConfigStore {
  async function get<K extends EntityKind>(kind: K, id: string) {
    const result = await table.client.send(
      new GetCommand({ TableName: table.name, Key: KEY.entity(kind, id), ConsistentRead: true }),
    );
    return result.Item ? stripKeys<EntityByKind[K]>(result.Item) : undefined;
  }

  async function claimName(kind: EntityKind, name: string, ownerId: string) {
    try {
      await table.client.send(
        new PutCommand({
          TableName: table.name,
          Item: { ...KEY.name(kind, name), ownerId, claimedAt: Date.now() },
          ConditionExpression: 'attribute_not_exists(pk) OR ownerId = :owner',
          ExpressionAttributeValues: { ':owner': ownerId },
        }),
      );
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      await takeOverOrphanedName(kind, name, ownerId);
    }
  }

  async function takeOverOrphanedName(kind: EntityKind, name: string, ownerId: string) {
    const guard = await table.client.send(
      new GetCommand({ TableName: table.name, Key: KEY.name(kind, name), ConsistentRead: true }),
    );
    const currentOwner = guard.Item?.ownerId as string | undefined;
    const claimedAt = Number(guard.Item?.claimedAt ?? 0);
    const owner = currentOwner ? await get(kind, currentOwner) : undefined;
    const inUse = owner !== undefined && uniqueName(kind, owner) === name;
    if (inUse || Date.now() - claimedAt < ORPHANED_GUARD_AGE_MS) {
      throw new ConflictError(`a ${kind} named ${name} exists already`);
    }

    try {
      await table.client.send(
        new PutCommand({
          TableName: table.name,
          Item: { ...KEY.name(kind, name), ownerId, claimedAt: Date.now() },
          ConditionExpression: 'attribute_not_exists(pk) OR ownerId = :previous',
          ExpressionAttributeValues: { ':previous': currentOwner ?? '' },
        }),
      );
    } catch (error) {
      if (isConditionFailure(error)) throw new ConflictError(`a ${kind} named ${name} exists already`);
      throw error;
    }
  }

  async function releaseName(kind: EntityKind, name: string, ownerId: string) {
    try {
      await table.client.send(
        new DeleteCommand({
          TableName: table.name,
          Key: KEY.name(kind, name),
          ConditionExpression: 'ownerId = :owner',
          ExpressionAttributeValues: { ':owner': ownerId },
        }),
      );
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
    }
  }

  return {
    get,

    async list(kind) {
      const items = await queryAll(table, {
        KeyConditionExpression: 'pk = :kind',
        ExpressionAttributeValues: { ':kind': kind },
      });
      return items.map((item) => stripKeys(item));
    },

    async create(kind, entity) {
      const name = uniqueName(kind, entity);
      if (name !== undefined) await claimName(kind, name, entity.id);

      try {
        await table.client.send(
          new PutCommand({
            TableName: table.name,
            Item: { ...KEY.entity(kind, entity.id), ...entity },
            ConditionExpression: 'attribute_not_exists(pk)',
          }),
        );
      } catch (error) {
        if (isConditionFailure(error)) throw new ConflictError(`${kind} ${entity.id} exists already`);
        throw error;
      }
    },

    async update(kind, previous, next) {
      const oldName = uniqueName(kind, previous);
      const newName = uniqueName(kind, { ...previous, ...next });
      const renamed = newName !== undefined && newName !== oldName;
      if (renamed) await claimName(kind, newName, previous.id);

      const fields = Object.entries(next).filter(([field]) => field !== 'id');
      if (fields.length > 0) await updateFields(table, kind, previous.id, fields);

      if (renamed && oldName !== undefined) await releaseName(kind, oldName, previous.id);
    },

    async remove(kind, entity) {
      try {
        await table.client.send(
          new DeleteCommand({
            TableName: table.name,
            Key: KEY.entity(kind, entity.id),
            ConditionExpression: 'attribute_exists(pk)',
          }),
        );
      } catch (error) {
        if (isConditionFailure(error)) throw new NotFoundError(`${kind} ${entity.id} not found`);
        throw error;
      }

      const name = uniqueName(kind, entity);
      if (name !== undefined) await releaseName(kind, name, entity.id);
    },
  };
}

/** Sets the fields with a value and removes the fields given as undefined. */
async function updateFields(table: Table, kind: EntityKind, id: string, fields: [string, unknown][]) {
  const names: Record<string, string> = {};
  const values: Record<string, unknown> = {};
  const assignments: string[] = [];
  const removals: string[] = [];
  for (const [index, [field, value]] of fields.entries()) {
    names[`#f${index}`] = field;
    if (value === undefined) {
      removals.push(`#f${index}`);
      continue;
    }
    values[`:v${index}`] = value;
    assignments.push(`#f${index} = :v${index}`);
  }
  const clauses = [
    assignments.length > 0 ? `SET ${assignments.join(', ')}` : '',
    removals.length > 0 ? `REMOVE ${removals.join(', ')}` : '',
  ];

  try {
    await table.client.send(
      new UpdateCommand({
        TableName: table.name,
        Key: KEY.entity(kind, id),
        UpdateExpression: clauses.filter(Boolean).join(' '),
        ConditionExpression: 'attribute_exists(pk)',
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: Object.keys(values).length > 0 ? values : undefined,
      }),
    );
  } catch (error) {
    if (isConditionFailure(error)) throw new NotFoundError(`${kind} ${id} not found`);
    throw error;
  }
}

function uniqueName(kind: EntityKind, entity: object): string | undefined {
  if (!UNIQUE_NAME_KINDS.has(kind)) return undefined;
  const name = (entity as { name?: unknown }).name;
  return typeof name === 'string' ? name : undefined;
}
