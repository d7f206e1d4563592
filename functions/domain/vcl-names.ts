// Names of loaded VCLs: a content hash and a timestamp, so that a server's active VCL shows which
// configuration it runs.
import { createHash, randomInt } from 'node:crypto';
import { VclRenderError } from './vcl-values.js';

const VAAS_VCL_NAME = /^vaas-([0-9a-f]{16})-[0-9a-z]+-[0-9a-z]{4}$/;

/** Returns the SHA-256 of the VCL text as lowercase hex. */
export function vclContentHash(vcl: string): string {
  return createHash('sha256').update(vcl, 'utf8').digest('hex');
}

/**
 * Returns a unique VCL name `vaas-<first 16 hex of the hash>-<ms since epoch in base36>-<4 random
 * base36>`, which matches varnishd's rule `[A-Za-z][A-Za-z0-9_-]*`.
 */
export function vclNameFor(hash: string, now: Date): string {
  if (!/^[0-9a-f]{16,}$/.test(hash)) {
    throw new VclRenderError(`invalid content hash ${JSON.stringify(hash)}: expected lowercase hex`);
  }
  const suffix = randomInt(36 ** 4)
    .toString(36)
    .padStart(4, '0');
  return `vaas-${hash.slice(0, 16)}-${now.getTime().toString(36)}-${suffix}`;
}

/** Returns the 16 hex characters of content hash in a name from vclNameFor, or undefined for any other name. */
export function hashFromVclName(name: string): string | undefined {
  return VAAS_VCL_NAME.exec(name)?.[1];
}
