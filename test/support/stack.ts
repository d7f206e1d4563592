import { randomBytes } from 'node:crypto';
import { createAgentTransport } from '../../functions/adapters/agent-client.js';
import type { ReloadObserver, VarnishTransport } from '../../functions/ports.js';
import { type DemoFleet, startDemoFleet, startNodeAgent } from '../../local/demo-fleet.js';
import { type LocalRuntime, startLocalRuntime } from '../../local/runtime.js';

export interface ApiResponse {
  status: number;
  headers: Headers;
  // biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary JSON response bodies.
  body: any;
}

export interface TestStack {
  runtime: LocalRuntime;
  fleet: DemoFleet;
  /** Counts of what the reload handler did, from its observer. */
  counts: { reloads: number; failedReloads: number; skippedTasks: number };
  /** Every VCL load sent to an agent, in order. */
  loads: { serverAddress: string; serverPort: number; name: string; vcl: string }[];
  /** Delay added before every VCL load reaches the agent, to make reloads slow. */
  setLoadDelay(ms: number): void;
  api(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<ApiResponse>;
  /** Stops the agent of node `index`, so the reload handler cannot reach that server. */
  stopAgent(index: number): Promise<void>;
  /** Starts the agent of node `index` again on the same port. */
  restartAgent(index: number): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts the local runtime (in-memory dynalite, fauxqs, sync-request state machine) with a fleet of
 * real varnishd instances and agents. The transport is the real agent client, wrapped only to
 * count loads and to delay them on request.
 */
export async function startTestStack(
  options: { varnishCount?: number; backendCount?: number; syncMaxPolls?: number } = {},
): Promise<TestStack> {
  const agentKey = randomBytes(24).toString('hex');
  const fleet = await startDemoFleet({
    varnishCount: options.varnishCount ?? 2,
    backendCount: options.backendCount ?? 2,
    agentKey,
    fastCompile: true,
  });

  const counts = { reloads: 0, failedReloads: 0, skippedTasks: 0 };
  const observer: ReloadObserver = {
    reloaded: (_clusterId, _ms, succeeded) => {
      if (succeeded) counts.reloads++;
      else counts.failedReloads++;
    },
    skipped: (_clusterId, taskCount) => {
      counts.skippedTasks += taskCount;
    },
  };

  let loadDelayMs = 0;
  const loads: TestStack['loads'] = [];
  const agents = createAgentTransport({ key: agentKey, timeoutMs: 30_000 });
  const transport: VarnishTransport = (server) => {
    const agent = agents(server);
    return {
      ...agent,
      async loadVcl(name, vcl) {
        loads.push({ serverAddress: server.address, serverPort: server.port, name, vcl });
        if (loadDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, loadDelayMs));
        await agent.loadVcl(name, vcl);
      },
    };
  };

  let runtime: LocalRuntime;
  try {
    runtime = await startLocalRuntime({
      port: 0,
      transport,
      observer,
      syncPollMs: 100,
      syncMaxPolls: options.syncMaxPolls,
      // Tests run reconciler passes themselves.
      reconcileIntervalMs: 3_600_000,
    });
  } catch (error) {
    await fleet.stop();
    throw error;
  }

  return {
    runtime,
    fleet,
    counts,
    loads,
    setLoadDelay: (ms) => {
      loadDelayMs = ms;
    },
    api: (method, path, body, headers) => callApi(runtime.apiUrl, method, path, body, headers),
    stopAgent: (index) => nodeAt(fleet, index).agent.close(),
    async restartAgent(index) {
      const node = nodeAt(fleet, index);
      node.agent = await startNodeAgent(agentKey, node.varnishd, node.agent.port);
    },
    async stop() {
      await runtime.stop();
      await fleet.stop();
    },
  };
}

function nodeAt(fleet: DemoFleet, index: number) {
  const node = fleet.nodes[index];
  if (!node) throw new Error(`the fleet has no node ${index}`);
  return node;
}

export async function callApi(
  baseUrl: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<ApiResponse> {
  const init: RequestInit = { method, headers: { ...headers } };
  if (body !== undefined) {
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
    (init.headers as Record<string, string>)['content-type'] ??= 'application/json';
  }
  const response = await fetch(`${baseUrl}${path}`, init);
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = text === '' ? undefined : JSON.parse(text);
  } catch {
    // Not JSON; keep the text.
  }
  return { status: response.status, headers: response.headers, body: parsed };
}

/** Fetches a path through a varnishd's HTTP port. */
export async function throughVarnish(httpPort: number, path: string, host = 'example.test') {
  const response = await fetch(`http://127.0.0.1:${httpPort}${path}`, { headers: { host } });
  return { status: response.status, backend: response.headers.get('x-backend'), body: await response.text() };
}

/** Polls a task until it leaves queued and running, or throws after the time limit. */
export async function waitForTask(stack: TestStack, taskId: string, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { body } = await stack.api('GET', `/v1/tasks/${taskId}`);
    if (body.status === 'succeeded' || body.status === 'failed') return body;
    if (Date.now() > deadline) throw new Error(`task ${taskId} still ${body.status} after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Creates a cluster and registers every varnishd of the fleet as its server; returns the cluster id. */
export async function createFleetCluster(stack: TestStack, name: string): Promise<string> {
  const cluster = await stack.api('POST', '/v1/clusters', { name });
  if (cluster.status !== 201) throw new Error(`creating cluster ${name} returned ${cluster.status}`);

  for (const node of stack.fleet.nodes) {
    const server = await stack.api('POST', '/v1/servers', {
      cluster: cluster.body.id,
      address: '127.0.0.1',
      port: node.varnishd.httpPort,
      agentUrl: node.agent.url,
    });
    if (server.status !== 201) throw new Error(`registering a server in ${name} returned ${server.status}`);
  }
  return cluster.body.id;
}
