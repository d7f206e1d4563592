import { DeleteCommand, GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { ConcurrentUpdateError, ConflictError, NotFoundError } from '../domain/errors.js';
import type { ConfigStore, EntityByKind, EntityKind } from '../ports.js';
import { isConditionFailure, KEY, queryAll, stripKeys, type Table } from './dynamo-table.js';

// Kinds whose `name` is unique; a server's unique key is its address and HTTP port. A key is
// claimed by a guard item (`pk` = name#kind) before the entity is written. DynamoDB transactions
// would make the pair atomic, but the local emulator has none, so a guard left behind by a crash
// is taken over once its owner turns out not to exist. A fresh guard may belong to a create still
// on its way, so only old guards are taken over.
const UNIQUE_NAME_KINDS = new Set<EntityKind>([
  'cluster',
  'director',
  'datacenter',
  'probe',
  'timeProfile',
  'route',
  'vclTemplate',
]);
const ORPHANED_GUARD_AGE_MS = 60_000;

// Every entity carries a `version` that each update raises by one, on the condition that it is
// still the version the update read. So two PATCHes that read the same entity cannot both write.

export function createConfigStore(table: Table): ConfigStore {
  async function get<K extends EntityKind>(kind: K, id: string) {
    const result = await table.client.send(
      new GetCommand({ TableName: table.name, Key: KEY.entity(kind, id), ConsistentRead: true }),
    );
    return result.Item ? stripKeys<EntityByKind[K]>(result.Item) : undefined;
  }

  /** Explains a failed conditional update: the entity is gone, or another request changed it first. */
  async function updateConflict(kind: EntityKind, id: string) {
    if (!(await get(kind, id))) return new NotFoundError(`${kind} ${id} not found`);
    return new ConcurrentUpdateError(`${kind} ${id} was changed by another request; read it again and retry`);
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
      throw keyTaken(kind, name);
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
      if (isConditionFailure(error)) throw keyTaken(kind, name);
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
            Item: { ...KEY.entity(kind, entity.id), ...entity, version: 1 },
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

      const fields = Object.entries(next).filter(([field]) => field !== 'id' && field !== 'version');
      try {
        await updateFields(table, kind, previous.id, fields, versionOf(previous));
      } catch (error) {
        if (renamed) await releaseName(kind, newName, previous.id);
        if (isConditionFailure(error)) throw await updateConflict(kind, previous.id);
        throw error;
      }

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

/**
 * Sets the fields with a value, removes the fields given as undefined and raises the version,
 * on the condition that the stored version is still `version` (absent on items from before
 * versions existed). Throws ConditionalCheckFailedException otherwise.
 */
async function updateFields(
  table: Table,
  kind: EntityKind,
  id: string,
  fields: [string, unknown][],
  version: number | undefined,
) {
  const names: Record<string, string> = { '#version': 'version' };
  const values: Record<string, unknown> = { ':nextVersion': (version ?? 0) + 1 };
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
  assignments.push('#version = :nextVersion');
  const clauses = [
    `SET ${assignments.join(', ')}`,
    removals.length > 0 ? `REMOVE ${removals.join(', ')}` : '',
  ];
  if (version !== undefined) values[':version'] = version;

  await table.client.send(
    new UpdateCommand({
      TableName: table.name,
      Key: KEY.entity(kind, id),
      UpdateExpression: clauses.filter(Boolean).join(' '),
      ConditionExpression:
        version === undefined
          ? 'attribute_exists(pk) AND attribute_not_exists(#version)'
          : 'attribute_exists(pk) AND #version = :version',
      ExpressionAttributeNames: names,
      ExpressionAttributeValues: values,
    }),
  );
}

function versionOf(entity: object): number | undefined {
  const version = (entity as { version?: unknown }).version;
  return typeof version === 'number' ? version : undefined;
}

/** Returns the key that must be unique among entities of a kind, or undefined for kinds without one. */
function uniqueName(kind: EntityKind, entity: object): string | undefined {
  if (kind === 'server') {
    const { address, port } = entity as { address?: string; port?: number };
    return address === undefined ? undefined : `${canonicalAddress(address)}:${port}`;
  }
  if (!UNIQUE_NAME_KINDS.has(kind)) return undefined;
  const name = (entity as { name?: unknown }).name;
  return typeof name === 'string' ? name : undefined;
}

/**
 * Writes an address in one form per host: IPv6 in its shortest form, so `::1` and
 * `0:0:0:0:0:0:0:1` are one key, and an IPv4-mapped IPv6 address (`::ffff:127.0.0.1`) as IPv4.
 */
function canonicalAddress(address: string): string {
  if (!address.includes(':')) return address;
  const hostname = new URL(`http://[${address}]/`).hostname.slice(1, -1);
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(hostname);
  if (!mapped) return hostname;
  const high = Number.parseInt(mapped[1] ?? '0', 16);
  const low = Number.parseInt(mapped[2] ?? '0', 16);
  return [high >> 8, high & 255, low >> 8, low & 255].join('.');
}

function keyTaken(kind: EntityKind, key: string): ConflictError {
  if (kind === 'server') {
    return new ConflictError(
      `a server at ${key} exists already; one varnishd belongs to one cluster`,
      'address',
    );
  }
  return new ConflictError(`a ${kind} named ${key} exists already`, 'name');
}
