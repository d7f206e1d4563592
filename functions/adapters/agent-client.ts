// VarnishTransport over HTTP: talks to the agent that runs beside each varnishd (agent/server.ts).
import { deriveAgentToken } from '../domain/agent-auth.js';
import { VarnishUnavailableError, VclCompileError } from '../domain/errors.js';
import type { Server } from '../domain/model.js';
import type { PurgeTarget } from '../domain/purge-target.js';
import type { ActiveVcl, LoadedVcl, VarnishAgent, VarnishBackendHealth, VarnishTransport } from '../ports.js';

export interface AgentTransportOptions {
  /** The control plane's key; each agent's bearer token is derived from it and the agent's URL. */
  key: string;
  /** Time allowed for one agent request, response body included. A VCL load compiles C, so allow seconds. */
  timeoutMs: number;
  /** Sent as X-Request-Id so that the agent's logs carry the caller's id. */
  requestId?: string;
}

interface Problem {
  title?: string;
  detail?: string;
}

export function createAgentTransport(options: AgentTransportOptions): VarnishTransport {
  const timeout = options.timeoutMs;
  return (server: Server): VarnishAgent => {
    const call = async (method: string, path: string, body?: unknown, accepted?: number[]) => {
      if (server.agentUrl === undefined) {
        throw new VarnishUnavailableError(
          `server ${server.id} has no agentUrl, so the HTTP agent transport cannot reach it`,
        );
      }
      const token = deriveAgentToken(options.key, server.agentUrl);
      return callAgent(options, token, agentBase(server.agentUrl), method, path, body, accepted);
    };

    return {
      async listVcls(): Promise<LoadedVcl[]> {
        const { items } = await readJson<{ items: LoadedVcl[] }>(
          await call('GET', 'v1/vcl'),
          'VCL list',
          timeout,
        );
        return items;
      },

      async loadVcl(name: string, vcl: string): Promise<void> {
        await call('POST', 'v1/vcl', { name, vcl });
      },

      async useVcl(name: string): Promise<void> {
        await call('PUT', 'v1/vcl/active', { name });
      },

      /** Discards a VCL. A 404 from the agent counts as success, because the VCL is gone either way. */
      async discardVcl(name: string): Promise<void> {
        await call('DELETE', `v1/vcl/${encodeURIComponent(name)}`, undefined, [404]);
      },

      async compileVcl(vcl: string): Promise<void> {
        await call('POST', 'v1/vcl/compile', { vcl });
      },

      /** Returns the active VCL; a source that varnishd truncated counts as unreadable. */
      async activeVcl(): Promise<ActiveVcl> {
        const active = await readJson<ActiveVcl & { truncated?: boolean }>(
          await call('GET', 'v1/vcl/active'),
          'active VCL',
          timeout,
        );
        if (active.truncated) {
          throw new VarnishUnavailableError(`agent of server ${server.id} returned a truncated VCL source`);
        }
        return { name: active.name, source: active.source };
      },

      async backendHealth(): Promise<VarnishBackendHealth[]> {
        const response = await call('GET', 'v1/backends');
        return (await readJson<{ items: VarnishBackendHealth[] }>(response, 'backend list', timeout)).items;
      },

      async purge(target: PurgeTarget): Promise<void> {
        await call('POST', 'v1/purge', { url: target.path, headers: target.headers });
      },
    };
  };
}

/**
 * Sends one request and returns the response when its status is 2xx or listed in `accepted`.
 * Throws VclCompileError for a 422 from a VCL load, VarnishUnavailableError for everything else.
 */
async function callAgent(
  options: AgentTransportOptions,
  token: string,
  base: URL,
  method: string,
  path: string,
  body?: unknown,
  accepted: number[] = [],
): Promise<Response> {
  const url = new URL(path, base);
  const headers: Record<string, string> = { Authorization: `Bearer ${token}` };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
  }
  if (options.requestId) {
    headers['X-Request-Id'] = options.requestId;
  }

  let response: Response;
  try {
    response = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(options.timeoutMs),
    });
  } catch (error) {
    throw new VarnishUnavailableError(
      `agent ${url.origin} is unreachable: ${networkReason(error, options.timeoutMs)}`,
    );
  }

  if (response.ok || accepted.includes(response.status)) {
    return response;
  }

  const problem = await readProblem(response);
  // The agent returns 422 for a VCL load or compile that fails to compile, and for invalid input elsewhere.
  if (response.status === 422 && method === 'POST' && path.startsWith('v1/vcl')) {
    throw new VclCompileError(problem.detail ?? 'the VCL does not compile');
  }
  throw new VarnishUnavailableError(
    `agent ${url.origin} returned ${response.status} for ${method} /${path}: ${problem.detail ?? problem.title ?? response.statusText}`,
  );
}

async function readJson<T>(response: Response, description: string, timeoutMs: number): Promise<T> {
  try {
    return (await response.json()) as T;
  } catch (error) {
    throw new VarnishUnavailableError(
      `agent ${response.url} sent an unreadable ${description}: ${networkReason(error, timeoutMs)}`,
    );
  }
}

/** Returns the agent URL with a trailing slash, so relative paths keep a path prefix such as `/agent/`. */
function agentBase(agentUrl: string): URL {
  return new URL(agentUrl.endsWith('/') ? agentUrl : `${agentUrl}/`);
}

async function readProblem(response: Response): Promise<Problem> {
  try {
    return (await response.json()) as Problem;
  } catch {
    return {};
  }
}

function networkReason(error: unknown, timeoutMs: number): string {
  if (error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError')) {
    return `no response within ${timeoutMs} ms`;
  }
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? String(error);
}
