import { GetCommand, PutCommand, QueryCommand, type QueryCommandInput } from '@aws-sdk/lib-dynamodb';
import { BadRequestError } from '../domain/errors.js';
import type { HistoryEntry, HistoryPage, ReloadSnapshot } from '../domain/history.js';
import type { HistoryStore } from '../ports.js';
import { packJson, unpackJson } from './dynamo-blob.js';
import type { Table } from './dynamo-table.js';

// History lives in the configuration table. An entry is written under its resource
// (`history#<kind>#<id>`), under each affected cluster (`history#cluster#<id>`, which is also the
// cluster resource's own partition) and by id (`history-entry#<id>`). Sort keys `<at>#<id>` list
// newest first. Snapshots are `snapshot#<cluster>` items sorted by their zero-padded seq.
// Entries and configurations are stored with packJson, so a large template fits.
// NOTE: entries and snapshots have no expiry; each partition grows by one item per change or reload.

const SEQ_DIGITS = 15;
const SNAPSHOT_METADATA = ['clusterId', 'seq', 'reloadedAt', 'taskIds', 'servers'];

const scopeOf = (kind: string, id: string) => `history#${kind}#${id}`;
const entryKey = (id: string) => ({ pk: `history-entry#${id}`, sk: 'entry' });
const snapshotPartition = (clusterId: string) => `snapshot#${clusterId}`;
const seqKey = (seq: number) => String(seq).padStart(SEQ_DIGITS, '0');

export function createHistoryStore(table: Table): HistoryStore {
  const put = (item: Record<string, unknown>) =>
    table.client.send(new PutCommand({ TableName: table.name, Item: item }));

  async function listEntries(pk: string, page: HistoryPage) {
    const result = await queryPage(table, { pk, page, newestFirst: true });
    const items = await Promise.all(result.items.map((item) => unpackJson<HistoryEntry>(table, item.entry)));
    return { items, next: result.next };
  }

  return {
    async putEntries(entries) {
      for (const entry of entries) {
        const packed = await packJson(table, entry);
        const sk = `${entry.at}#${entry.id}`;
        const scopes = new Set([
          scopeOf(entry.kind, entry.resourceId),
          ...entry.clusters.map((id) => scopeOf('cluster', id)),
        ]);
        await Promise.all([
          put({ ...entryKey(entry.id), entry: packed }),
          ...[...scopes].map((pk) => put({ pk, sk, entry: packed })),
        ]);
      }
    },

    listForResource: (kind, id, page) => listEntries(scopeOf(kind, id), page),
    listForCluster: (clusterId, page) => listEntries(scopeOf('cluster', clusterId), page),

    async getEntry(id) {
      const result = await table.client.send(
        new GetCommand({ TableName: table.name, Key: entryKey(id), ConsistentRead: true }),
      );
      return result.Item ? unpackJson<HistoryEntry>(table, result.Item.entry) : undefined;
    },

    async putSnapshot(snapshot) {
      const { config, ...metadata } = snapshot;
      await put({
        pk: snapshotPartition(snapshot.clusterId),
        sk: seqKey(snapshot.seq),
        ...metadata,
        config: await packJson(table, config),
      });
    },

    async findSnapshot(clusterId, seq) {
      const result = await table.client.send(
        new QueryCommand({
          TableName: table.name,
          KeyConditionExpression: 'pk = :pk AND sk >= :seq',
          ExpressionAttributeValues: { ':pk': snapshotPartition(clusterId), ':seq': seqKey(seq) },
          ConsistentRead: true,
          Limit: 1,
        }),
      );
      return result.Items?.[0] ? snapshotOf(table, result.Items[0]) : undefined;
    },

    async latestSnapshot(clusterId) {
      const result = await queryPage(table, {
        pk: snapshotPartition(clusterId),
        page: { limit: 1 },
        newestFirst: true,
      });
      return result.items[0] ? snapshotOf(table, result.items[0]) : undefined;
    },

    async listSnapshots(clusterId, page) {
      const result = await queryPage(table, {
        pk: snapshotPartition(clusterId),
        page,
        newestFirst: true,
        attributes: SNAPSHOT_METADATA,
      });
      return { items: result.items as unknown as Omit<ReloadSnapshot, 'config'>[], next: result.next };
    },
  };
}

async function snapshotOf(table: Table, item: Record<string, unknown>): Promise<ReloadSnapshot> {
  const { pk: _pk, sk: _sk, config, ...metadata } = item;
  return { ...(metadata as Omit<ReloadSnapshot, 'config'>), config: await unpackJson(table, config) };
}

/** Reads one page of a partition; the cursor is the base64url of the last sort key read. */
async function queryPage(
  table: Table,
  request: { pk: string; page: HistoryPage; newestFirst: boolean; attributes?: string[] },
): Promise<{ items: Record<string, unknown>[]; next?: string }> {
  const input: QueryCommandInput = {
    TableName: table.name,
    KeyConditionExpression: 'pk = :pk',
    ExpressionAttributeValues: { ':pk': request.pk },
    ScanIndexForward: !request.newestFirst,
    ConsistentRead: true,
    Limit: request.page.limit,
  };
  if (request.page.cursor !== undefined) {
    input.ExclusiveStartKey = { pk: request.pk, sk: decodeCursor(request.page.cursor) };
  }
  if (request.attributes) {
    input.ProjectionExpression = request.attributes.map((_name, index) => `#a${index}`).join(', ');
    input.ExpressionAttributeNames = Object.fromEntries(
      request.attributes.map((name, index) => [`#a${index}`, name]),
    );
  }

  const result = await table.client.send(new QueryCommand(input));
  const last = result.LastEvaluatedKey?.sk;
  return {
    items: result.Items ?? [],
    next: typeof last === 'string' ? Buffer.from(last, 'utf8').toString('base64url') : undefined,
  };
}

function decodeCursor(cursor: string): string {
  const sk = /^[A-Za-z0-9_-]{1,400}$/.test(cursor) ? Buffer.from(cursor, 'base64url').toString('utf8') : '';
  if (!/^[\x21-\x7e]{1,300}$/.test(sk)) {
    throw new BadRequestError('cursor is invalid: pass the `next` value of the previous page unchanged');
  }
  return sk;
}
