// The read-only and purge calls of the SSM transport: `show`, `health` and `ban` of apply-vcl.sh.
import { gunzipSync } from 'node:zlib';
import { parseBackendList } from '../../agent/inspect.js';
import { VarnishUnavailableError } from '../domain/errors.js';
import { type PurgeTarget, parsePurgeTarget } from '../domain/purge-target.js';
import type { ActiveVcl, VarnishAgent, VarnishBackendHealth } from '../ports.js';
import type { CommandResult } from './ssm-script.js';

type Call = (args: string[]) => Promise<CommandResult>;
type ExpectOk = (action: string, result: CommandResult) => void;

/**
 * Returns activeVcl, backendHealth and purge for a script agent. SSM returns at most 24,000
 * characters of output, so the VCL source travels gzip-compressed.
 * NOTE: `backend.list -j` of a very large fleet can exceed that limit; the call then fails.
 */
export function scriptInspection(
  target: string,
  call: Call,
  expectOk: ExpectOk,
): Required<Pick<VarnishAgent, 'activeVcl' | 'backendHealth' | 'purge'>> {
  return {
    async activeVcl(): Promise<ActiveVcl> {
      const result = await call(['show']);
      expectOk('show', result);
      const output = parseJson(target, 'show', result.stdout) as { name?: unknown; gzipBase64?: unknown };
      if (typeof output.name !== 'string' || typeof output.gzipBase64 !== 'string') {
        throw new VarnishUnavailableError(`show on ${target} printed no name and source`);
      }
      return {
        name: output.name,
        source: gunzipSync(Buffer.from(output.gzipBase64, 'base64')).toString('utf8'),
      };
    },

    async backendHealth(): Promise<VarnishBackendHealth[]> {
      const result = await call(['health']);
      expectOk('health', result);
      return parseBackendList(result.stdout);
    },

    async purge(requested: PurgeTarget): Promise<void> {
      // Validated again here, as the agent does, before anything reaches the host's shell.
      const checked = parsePurgeTarget(requested.path, requested.headers);
      const headers = Object.entries(checked.headers).sort(([a], [b]) => (a < b ? -1 : 1));
      expectOk('ban', await call(['ban', checked.path, ...headers.flat()]));
    },
  };
}

function parseJson(target: string, action: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new VarnishUnavailableError(`${action} on ${target} printed invalid JSON: ${text.slice(0, 200)}`);
  }
}
