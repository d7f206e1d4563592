import { readFile } from 'node:fs/promises';
import { type AgentServer, startAgentServer } from '../agent/server.js';
import { deriveAgentToken } from '../functions/domain/agent-auth.js';
import { type DemoBackend, startDemoBackend } from './demo-backend.js';
import { findFreePort, startVarnishd, type VarnishdInstance } from './varnishd.js';

export interface FleetNode {
  varnishd: VarnishdInstance;
  agent: AgentServer;
}

export interface DemoFleet {
  nodes: FleetNode[];
  backends: DemoBackend[];
  stop(): Promise<void>;
}

export interface DemoFleetOptions {
  varnishCount: number;
  backendCount: number;
  /** The control plane's agent key; each agent gets the token derived from it and its URL. */
  agentKey: string;
  /** Compile VCL with -O0: faster loads, for demos and tests only. */
  fastCompile?: boolean;
  /** First ports to use; undefined picks free ones. Varnish HTTP, then agents, then backends. */
  ports?: { varnish: number; agent: number; backend: number };
}

/** Starts varnishd instances with an agent beside each, and demo backends, all on 127.0.0.1. */
export async function startDemoFleet(options: DemoFleetOptions): Promise<DemoFleet> {
  const nodes: FleetNode[] = [];
  const backends: DemoBackend[] = [];
  const stop = async () => {
    await Promise.all(nodes.map((node) => node.agent.close()));
    await Promise.all(nodes.map((node) => node.varnishd.stop()));
    await Promise.all(backends.map((backend) => backend.close()));
  };

  try {
    for (let index = 0; index < options.varnishCount; index++) {
      nodes.push(await startNode(options, index));
    }
    for (let index = 0; index < options.backendCount; index++) {
      const port = options.ports ? options.ports.backend + index : undefined;
      backends.push(await startDemoBackend({ name: `backend-${index + 1}`, port }));
    }
    return { nodes, backends, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

async function startNode(options: DemoFleetOptions, index: number): Promise<FleetNode> {
  const varnishd = await startVarnishd({
    httpPort: options.ports ? options.ports.varnish + index : undefined,
    fastCompile: options.fastCompile,
  });
  try {
    const agent = await startNodeAgent(
      options.agentKey,
      varnishd,
      options.ports ? options.ports.agent + index : 0,
    );
    return { varnishd, agent };
  } catch (error) {
    await varnishd.stop();
    throw error;
  }
}

/** Starts the agent of a node on 127.0.0.1 with the token derived for its URL; port 0 picks a free one. */
export async function startNodeAgent(
  agentKey: string,
  varnishd: VarnishdInstance,
  port: number,
): Promise<AgentServer> {
  const agentPort = port === 0 ? await findFreePort() : port;
  return startAgentServer({
    token: deriveAgentToken(agentKey, `http://127.0.0.1:${agentPort}`),
    admin: { host: '127.0.0.1', port: varnishd.adminPort, secret: await readFile(varnishd.secretFile) },
    port: agentPort,
  });
}
