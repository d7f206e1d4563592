// Stores JSON values of any size in the vaas table. A DynamoDB item is at most 400 KB, so a
// value is gzip-compressed and kept inside its item when small, and otherwise split into parts
// under a `blob#<sha256>` partition that the item refers to. Parts are content-addressed: writing
// the same value again rewrites the same parts, and a crash during a write leaves parts that no
// item refers to yet.
// NOTE: nothing deletes blob parts; values that history no longer refers to stay in the table.
import { createHash } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { queryAll, type Table } from './dynamo-table.js';

/** A JSON value inside an item (`data`, gzip) or in blob parts (`blob`, the SHA-256 of the gzip bytes). */
export type PackedJson = { data: Uint8Array } | { blob: string };

/** Largest compressed value kept inside the item that contains it. */
export const INLINE_LIMIT_BYTES = 96 * 1024;
/** Size of one blob part, well below the 400 KB item limit. */
const PART_BYTES = 320 * 1024;

export async function packJson(table: Table, value: unknown): Promise<PackedJson> {
  const data = gzipSync(JSON.stringify(value));
  if (data.length <= INLINE_LIMIT_BYTES) return { data };

  const hash = createHash('sha256').update(data).digest('hex');
  const writes: Promise<unknown>[] = [];
  for (let offset = 0, part = 0; offset < data.length; offset += PART_BYTES, part++) {
    const item = {
      pk: `blob#${hash}`,
      sk: String(part).padStart(6, '0'),
      data: data.subarray(offset, offset + PART_BYTES),
    };
    writes.push(table.client.send(new PutCommand({ TableName: table.name, Item: item })));
  }
  await Promise.all(writes);
  return { blob: hash };
}

export async function unpackJson<T>(table: Table, packed: unknown): Promise<T> {
  const { data, blob } = (packed ?? {}) as { data?: Uint8Array; blob?: string };
  let bytes = data;
  if (bytes === undefined && typeof blob === 'string') {
    const parts = await queryAll(table, {
      KeyConditionExpression: 'pk = :pk',
      ExpressionAttributeValues: { ':pk': `blob#${blob}` },
    });
    bytes = Buffer.concat(parts.map((part) => part.data as Uint8Array));
    if (createHash('sha256').update(bytes).digest('hex') !== blob) {
      throw new Error(`blob ${blob} is incomplete or damaged: its parts do not match its hash`);
    }
  }
  if (bytes === undefined) throw new Error('a stored JSON value has neither data nor a blob reference');
  return JSON.parse(gunzipSync(bytes).toString('utf8')) as T;
}
