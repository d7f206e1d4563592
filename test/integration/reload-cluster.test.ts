// Two-phase cluster reload against two real varnishd 7.1 instances, each with its agent.
import { readFile } from 'node:fs/promises';
import { Logger } from '@aws-lambda-powertools/logger';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type AgentServer, startAgentServer } from '../../agent/server.js';
import { createAgentTransport } from '../../functions/adapters/agent-client.js';
import { deriveAgentToken } from '../../functions/domain/agent-auth.js';
import type { ClusterConfig, Server, ServerStatus } from '../../functions/domain/model.js';
import { ClusterReloadError, reloadCluster } from '../../functions/domain/reload-cluster.js';
import { renderVcl } from '../../functions/domain/vcl.js';
import type { VarnishTransport } from '../../functions/ports.js';
import { type DemoBackend, startDemoBackend } from '../../local/demo-backend.js';
import { findFreePort, findVarnishd, startVarnishd, type VarnishdInstance } from '../../local/varnishd.js';

const varnishdPath = findVarnishd();
if (!varnishdPath) {
  console.warn('varnishd not found on PATH or in /usr/sbin: skipping the cluster reload integration tests');
}

const AGENT_KEY = 'reload-test-key-0123456789';
const silentLogger = new Logger({ serviceName: 'vaas-agent-test', logLevel: 'SILENT' });

interface Node {
  varnishd: VarnishdInstance;
  agent: AgentServer;
  server: Server;
}

describe.skipIf(!varnishdPath)('reloadCluster with two varnishd', () => {
  const nodes: Node[] = [];
  const backends: DemoBackend[] = [];
  const transport = createAgentTransport({ key: AGENT_KEY, timeoutMs: 20_000 });
  let closedPort: number;
  let revision = 0;
  let probes = 0;

  beforeAll(async () => {
    for (const name of ['alpha', 'beta']) {
      backends.push(await startDemoBackend({ name }));
    }
    for (const id of ['server-1', 'server-2']) {
      const varnishd = await startVarnishd({ fastCompile: true });
      const agentPort = await findFreePort();
      const agent = await startAgentServer({
        token: deriveAgentToken(AGENT_KEY, `http://127.0.0.1:${agentPort}`),
        admin: { host: '127.0.0.1', port: varnishd.adminPort, secret: await readFile(varnishd.secretFile) },
        port: agentPort,
        logger: silentLogger,
      });
      nodes.push({ varnishd, agent, server: serverFor(id, varnishd.httpPort, agent.url, 'active') });
    }
    closedPort = await findFreePort();
  });

  afterAll(async () => {
    for (const node of nodes) {
      await node.agent.close();
      await node.varnishd.stop();
    }
    for (const backend of backends) {
      await backend.close();
    }
  });

  beforeEach(() => {
    revision += 1;
  });

  function serverFor(id: string, port: number, agentUrl: string, status: ServerStatus): Server {
    return { id, cluster: 'cluster-1', address: '127.0.0.1', port, agentUrl, status };
  }

  /** Returns a server whose agent is down, because nothing listens on its agent port. */
  function downServer(id: string, status: ServerStatus): Server {
    return serverFor(id, 6081, `http://127.0.0.1:${closedPort}`, status);
  }

  /** Routes every URL to one demo backend; `revision` makes the VCL differ between tests. */
  function configFor(backend: DemoBackend): ClusterConfig {
    return {
      cluster: { id: 'cluster-1', name: 'prod' },
      servers: nodes.map((node) => node.server),
      directors: [
        {
          id: 'director-1',
          name: `web-${revision}`,
          clusters: ['cluster-1'],
          mode: 'round_robin',
          router: 'url',
          routeExpression: '^/',
        },
      ],
      backends: [
        {
          id: 'backend-1',
          director: 'director-1',
          address: '127.0.0.1',
          port: backend.port,
          weight: 1,
          enabled: true,
        },
      ],
    };
  }

  function reload(servers: Server[], config: ClusterConfig, useTransport: VarnishTransport = transport) {
    return reloadCluster({
      servers,
      renderFor: (server) => renderVcl(config, server),
      transport: useTransport,
    });
  }

  /** Returns the backend that served a fresh URL, so that no object cached under an older VCL is returned. */
  async function backendBehind(node: Node): Promise<string | null> {
    probes += 1;
    const response = await fetch(`http://127.0.0.1:${node.varnishd.httpPort}/probe-${probes}`);
    return response.headers.get('x-backend');
  }

  async function vclNames(node: Node): Promise<{ name: string; status: string }[]> {
    return transport(node.server).listVcls();
  }

  async function activeVcl(node: Node): Promise<string | undefined> {
    return (await vclNames(node)).find((item) => item.status === 'active')?.name;
  }

  it('applies the VCL on every server', async () => {
    const report = await reload(
      nodes.map((node) => node.server),
      configFor(backends[0] as DemoBackend),
    );

    expect(report.servers.map((result) => result.status)).toEqual(['applied', 'applied']);
    for (const node of nodes) {
      expect(await backendBehind(node)).toBe('alpha');
      expect(await activeVcl(node)).toBe(
        report.servers.find((result) => result.serverId === node.server.id)?.vclName,
      );
    }
  });

  it('skips servers that run the same VCL', async () => {
    const config = configFor(backends[0] as DemoBackend);
    const first = await reload(
      nodes.map((node) => node.server),
      config,
    );

    const second = await reload(
      nodes.map((node) => node.server),
      config,
    );

    expect(second.servers.map((result) => result.status)).toEqual(['skipped', 'skipped']);
    expect(second.servers.map((result) => result.reason)).toEqual(['unchanged', 'unchanged']);
    expect(second.servers.map((result) => result.vclName)).toEqual(
      first.servers.map((result) => result.vclName),
    );
  });

  it('keeps the old VCL everywhere when an active server is down', async () => {
    await reload(
      nodes.map((node) => node.server),
      configFor(backends[0] as DemoBackend),
    );
    const before = await Promise.all(nodes.map((node) => activeVcl(node)));
    revision += 1;

    const servers = [...nodes.map((node) => node.server), downServer('server-3', 'active')];
    const result = reload(servers, configFor(backends[1] as DemoBackend));

    await expect(result).rejects.toThrow(ClusterReloadError);
    await expect(result).rejects.toThrow(
      `server server-3 (127.0.0.1:6081): agent http://127.0.0.1:${closedPort}`,
    );
    for (const [index, node] of nodes.entries()) {
      expect(await activeVcl(node)).toBe(before[index]);
      expect(await backendBehind(node)).toBe('alpha');
      const loadedNotActive = (await vclNames(node)).filter(
        (item) => item.name.startsWith('vaas-') && item.status === 'available',
      );
      expect(loadedNotActive).toEqual([]);
    }
  });

  it('reports the servers of a failed reload', async () => {
    const servers = [...nodes.map((node) => node.server), downServer('server-3', 'active')];
    const error = await reload(servers, configFor(backends[1] as DemoBackend)).catch(
      (caught: unknown) => caught,
    );

    expect(error).toBeInstanceOf(ClusterReloadError);
    const statuses = (error as ClusterReloadError).report.servers.map((result) => result.status);
    expect(statuses).toEqual(['failed', 'failed', 'failed']);
    expect((error as ClusterReloadError).statusCode).toBe(502);
  });

  it('applies despite a failed maintenance server', async () => {
    const servers = [...nodes.map((node) => node.server), downServer('server-3', 'maintenance')];

    const report = await reload(servers, configFor(backends[1] as DemoBackend));

    expect(report.servers.map((result) => result.status)).toEqual(['applied', 'applied', 'failed']);
    expect(report.servers[2]?.error).toContain(`127.0.0.1:${closedPort}`);
    for (const node of nodes) {
      expect(await backendBehind(node)).toBe('beta');
    }
  });

  it('skips disabled servers', async () => {
    const servers = [...nodes.map((node) => node.server), downServer('server-3', 'disabled')];

    const report = await reload(servers, configFor(backends[0] as DemoBackend));

    expect(report.servers.map((result) => result.status)).toEqual(['applied', 'applied', 'skipped']);
    expect(report.servers[2]?.reason).toBe('disabled');
  });

  it('repairs a server whose vcl.use failed on the next reload', async () => {
    // Fault injection around the real agents: the agent of server-2 fails between the two phases,
    // which no real component here can do on cue.
    const failingUse: VarnishTransport = (server) => {
      const agent = transport(server);
      if (server.id !== 'server-2') {
        return agent;
      }
      return { ...agent, useVcl: () => Promise.reject(new Error('agent crashed')) };
    };
    const config = configFor(backends[1] as DemoBackend);
    const servers = nodes.map((node) => node.server);

    const failed = reload(servers, config, failingUse);

    await expect(failed).rejects.toThrow(/some servers may already run the new VCL.*server server-2/);
    expect(await backendBehind(nodes[0] as Node)).toBe('beta');
    expect(await backendBehind(nodes[1] as Node)).toBe('alpha');

    const repaired = await reload(servers, config);

    expect(repaired.servers.map((result) => result.status)).toEqual(['skipped', 'applied']);
    expect(await backendBehind(nodes[1] as Node)).toBe('beta');
  });
});
