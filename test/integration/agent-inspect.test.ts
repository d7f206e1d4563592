// The agent's compile-only, active-VCL, backend-health and purge routes against a real varnishd 7.1,
// through the HTTP transport that the control plane uses.
import { readFile } from 'node:fs/promises';
import { Logger } from '@aws-lambda-powertools/logger';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AgentServer, startAgentServer } from '../../agent/server.js';
import { createAgentTransport } from '../../functions/adapters/agent-client.js';
import { deriveAgentToken } from '../../functions/domain/agent-auth.js';
import { VarnishUnavailableError, VclCompileError } from '../../functions/domain/errors.js';
import type { Server } from '../../functions/domain/model.js';
import type { VarnishAgent } from '../../functions/ports.js';
import { type DemoBackend, startDemoBackend } from '../../local/demo-backend.js';
import { findFreePort, findVarnishd, startVarnishd, type VarnishdInstance } from '../../local/varnishd.js';

const AGENT_KEY = 'test-key-0123456789abcdef';
const silentLogger = new Logger({ serviceName: 'vaas-agent-test', logLevel: 'SILENT' });

describe.skipIf(!findVarnishd())('agent inspection routes', () => {
  let varnishd: VarnishdInstance;
  let agentServer: AgentServer;
  let backend: DemoBackend;
  let agent: VarnishAgent;
  let counter = 0;

  beforeAll(async () => {
    varnishd = await startVarnishd({ fastCompile: true });
    backend = await startDemoBackend({ name: 'demo' });
    const agentPort = await findFreePort();
    agentServer = await startAgentServer({
      token: deriveAgentToken(AGENT_KEY, `http://127.0.0.1:${agentPort}`),
      port: agentPort,
      admin: { host: '127.0.0.1', port: varnishd.adminPort, secret: await readFile(varnishd.secretFile) },
      logger: silentLogger,
    });
    const server: Server = {
      id: 'inspect',
      cluster: 'c',
      address: '127.0.0.1',
      port: varnishd.httpPort,
      agentUrl: agentServer.url,
      status: 'active',
    };
    agent = createAgentTransport({ key: AGENT_KEY, timeoutMs: 10_000 })(server);
  });

  afterAll(async () => {
    await agentServer?.close();
    await backend?.close();
    await varnishd?.stop();
  });

  async function loadAndUse(vcl: string): Promise<string> {
    counter += 1;
    const name = `vaas-inspect-${counter}`;
    await agent.loadVcl(name, vcl);
    await agent.useVcl(name);
    return name;
  }

  const cachingVcl = (extra = '') =>
    `vcl 4.1;\nbackend demo { .host = "127.0.0.1"; .port = "${backend.port}"; }\n${extra}`;

  it('compiles a valid VCL and leaves nothing loaded', async () => {
    const before = await agent.listVcls();

    await agent.compileVcl?.(cachingVcl());

    expect(await agent.listVcls()).toEqual(before);
  });

  it('rejects a broken VCL with the compiler position', async () => {
    const broken = cachingVcl('sub vcl_recv {\n    if (req.url ~ "(?<=a+)b") { return (pass); }\n}\n');
    const before = await agent.listVcls();

    const error = await agent.compileVcl?.(broken).catch((caught: unknown) => caught);

    expect(error).toBeInstanceOf(VclCompileError);
    expect((error as Error).message).toContain("('<vcl.inline>' Line 4 Pos");
    expect(await agent.listVcls()).toEqual(before);
  });

  it('returns the source of the active VCL', async () => {
    const vcl = cachingVcl('# active source\n');
    const name = await loadAndUse(vcl);

    expect(await agent.activeVcl?.()).toEqual({ name, source: vcl });
  });

  it('returns a source beyond cli_limit', async () => {
    const padding = Array.from({ length: 3000 }, (_, index) => `# padding line ${index} ..........`).join(
      '\n',
    );
    const vcl = cachingVcl(`${padding}\n`);
    expect(vcl.length).toBeGreaterThan(48 * 1024);
    const name = await loadAndUse(vcl);

    const active = await agent.activeVcl?.();

    expect(active?.name).toBe(name);
    expect(active?.source).toBe(vcl);
  });

  it('reports sick and healthy backends', async () => {
    const closedPort = await findFreePort();
    const probe =
      '.probe = { .url = "/"; .interval = 0.1s; .timeout = 0.05s; .window = 3; .threshold = 2; .initial = 0; }';
    const name = await loadAndUse(
      [
        'vcl 4.1;',
        `backend up { .host = "127.0.0.1"; .port = "${backend.port}"; ${probe} }`,
        `backend down { .host = "127.0.0.1"; .port = "${closedPort}"; ${probe} }`,
        `backend plain { .host = "127.0.0.1"; .port = "${backend.port}"; }`,
        'sub vcl_recv { if (req.url ~ "^/d") { set req.backend_hint = down; } elsif (req.url ~ "^/p") { set req.backend_hint = plain; } else { set req.backend_hint = up; } }',
      ].join('\n'),
    );
    await new Promise((resolve) => setTimeout(resolve, 600));

    const health = ((await agent.backendHealth?.()) ?? []).filter((item) => item.vcl === name);
    const byName = new Map(health.map((item) => [item.backend, item]));

    expect(byName.get('up')?.healthy).toBe(true);
    expect(byName.get('up')?.probe?.window).toBe(3);
    expect(byName.get('down')?.healthy).toBe(false);
    expect(byName.get('down')?.probe?.good).toBe(0);
    expect(byName.get('plain')?.healthy).toBe(true);
    expect(byName.get('plain')?.probe).toBeUndefined();
    expect(byName.get('plain')?.lastChange).toMatch(/^\d{4}-\d\d-\d\dT/);
  });

  it('purges a cached object', async () => {
    await loadAndUse(cachingVcl());
    const url = `http://127.0.0.1:${varnishd.httpPort}/cached/${Date.now()}`;
    const first = await fetch(url);
    await first.text();
    const cached = await fetch(url);
    await cached.text();
    // X-Varnish carries two transaction ids on a cache hit and one on a miss.
    expect(cached.headers.get('x-varnish')).toMatch(/^\d+ \d+$/);

    await agent.purge?.({ path: new URL(url).pathname, headers: {} });
    const afterPurge = await fetch(url);
    await afterPurge.text();

    expect(afterPurge.headers.get('x-varnish')).toMatch(/^\d+$/);
  });

  it('rejects a purge URL breaking the ban', async () => {
    const error = await agent
      .purge?.({ path: '/x" || obj.status == "200', headers: {} })
      .catch((caught: unknown) => caught);

    expect(error).toBeInstanceOf(VarnishUnavailableError);
    expect((error as Error).message).toContain('422');
  });
});
