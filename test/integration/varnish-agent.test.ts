// The agent against a real varnishd 7.1: HTTP API, admin protocol and traffic through varnishd.
import { readFile } from 'node:fs/promises';
import { Logger } from '@aws-lambda-powertools/logger';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AgentServer, startAgentServer } from '../../agent/server.js';
import { createAgentTransport } from '../../functions/adapters/agent-client.js';
import { deriveAgentToken } from '../../functions/domain/agent-auth.js';
import { VarnishUnavailableError, VclCompileError } from '../../functions/domain/errors.js';
import type { Server } from '../../functions/domain/model.js';
import { type DemoBackend, startDemoBackend } from '../../local/demo-backend.js';
import { findFreePort, findVarnishd, startVarnishd, type VarnishdInstance } from '../../local/varnishd.js';

const varnishdPath = findVarnishd();
if (!varnishdPath) {
  console.warn('varnishd not found on PATH or in /usr/sbin: skipping the agent integration tests');
}

const AGENT_KEY = 'test-key-0123456789abcdef';
/** The token derived for the agent under test; set once its port is known. */
let TOKEN = '';
const silentLogger = new Logger({ serviceName: 'vaas-agent-test', logLevel: 'SILENT' });

describe.skipIf(!varnishdPath)('agent with varnishd', () => {
  let varnishd: VarnishdInstance;
  let agent: AgentServer;
  let backend: DemoBackend;
  let counter = 0;

  beforeAll(async () => {
    varnishd = await startVarnishd({ fastCompile: true });
    backend = await startDemoBackend({ name: 'demo' });
    const agentPort = await findFreePort();
    TOKEN = deriveAgentToken(AGENT_KEY, `http://127.0.0.1:${agentPort}`);
    agent = await startAgentServer({
      token: TOKEN,
      admin: { host: '127.0.0.1', port: varnishd.adminPort, secret: await readFile(varnishd.secretFile) },
      port: agentPort,
      logger: silentLogger,
    });
  });

  afterAll(async () => {
    await agent?.close();
    await backend?.close();
    await varnishd?.stop();
  });

  function call(method: string, path: string, body?: unknown, token: string | null = TOKEN) {
    const headers: Record<string, string> = { 'Content-Type': 'application/json' };
    if (token !== null) {
      headers.Authorization = `Bearer ${token}`;
    }
    return fetch(`${agent.url}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  }

  function uniqueName(prefix = 'vaas-test'): string {
    counter += 1;
    return `${prefix}-${counter}`;
  }

  function routingVcl(extra = ''): string {
    return [
      'vcl 4.1;',
      `backend demo { .host = "127.0.0.1"; .port = "${backend.port}"; }`,
      'sub vcl_recv { return (pass); }',
      extra,
    ].join('\n');
  }

  async function loadAndUse(name: string, vcl: string): Promise<void> {
    const load = await call('POST', '/v1/vcl', { name, vcl });
    expect(load.status).toBe(201);
    const use = await call('PUT', '/v1/vcl/active', { name });
    expect(use.status).toBe(200);
  }

  async function listNames(): Promise<{ name: string; status: string }[]> {
    const response = await call('GET', '/v1/vcl');
    return ((await response.json()) as { items: { name: string; status: string }[] }).items;
  }

  it('rejects a request without token with 401', async () => {
    const response = await call('GET', '/v1/vcl', undefined, null);

    expect(response.status).toBe(401);
    expect(response.headers.get('content-type')).toBe('application/problem+json');
    expect(response.headers.get('www-authenticate')).toBe('Bearer');
  });

  it('rejects a wrong token with 401', async () => {
    const response = await call('POST', '/v1/vcl', { name: 'vaas-x', vcl: routingVcl() }, `${TOKEN}x`);

    expect(response.status).toBe(401);
    expect((await listNames()).map((item) => item.name)).not.toContain('vaas-x');
  });

  it('answers health without token', async () => {
    const response = await call('GET', '/v1/health', undefined, null);

    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: 'ok' });
  });

  it('answers health 503 when varnishd is unreachable', async () => {
    const closedPort = await findFreePort();
    const orphan = await startAgentServer({
      token: TOKEN,
      admin: { host: '127.0.0.1', port: closedPort, secret: Buffer.from('x\n'), commandTimeoutMs: 2000 },
      logger: silentLogger,
    });
    try {
      const response = await fetch(`${orphan.url}/v1/health`);

      expect(response.status).toBe(503);
    } finally {
      await orphan.close();
    }
  });

  it('lists the boot VCL as active', async () => {
    const items = await listNames();

    expect(items.find((item) => item.name === 'boot')?.status).toBeDefined();
    expect(items.filter((item) => item.status === 'active')).toHaveLength(1);
  });

  it('routes traffic through varnishd after load and use', async () => {
    const name = uniqueName();
    await loadAndUse(name, routingVcl());

    const response = await fetch(`http://127.0.0.1:${varnishd.httpPort}/hello?x=1`);

    expect(response.status).toBe(200);
    expect(response.headers.get('x-backend')).toBe('demo');
    expect(await response.text()).toBe('demo GET /hello?x=1\n');
    expect((await listNames()).find((item) => item.name === name)?.status).toBe('active');
  });

  it('returns 422 with the compiler message for a broken VCL', async () => {
    const name = uniqueName();
    const response = await call('POST', '/v1/vcl', {
      name,
      vcl: 'vcl 4.1;\nsub vcl_recv { set req.nope = 1; }\n',
    });
    const problem = (await response.json()) as { detail: string; title: string };

    expect(response.status).toBe(422);
    expect(problem.title).toBe('Unprocessable Content');
    expect(problem.detail).toContain('req.nope');
    expect(problem.detail).toContain("('<vcl.inline>' Line 2");
    expect((await listNames()).map((item) => item.name)).not.toContain(name);
  });

  it('loads a VCL whose lines look like heredoc markers in full', async () => {
    // A VCL long string may span lines, so whole lines of the VCL can equal a plausible marker.
    const markers = ['EOF', 'END', 'VCL', `VAAS_${'0'.repeat(32)}`, `text VAAS_${'f'.repeat(32)}`];
    const synthetic = ['first', ...markers, 'last'].join('\n');
    const vcl = [
      'vcl 4.1;',
      'backend default none;',
      'sub vcl_recv { return (synth(200)); }',
      'sub vcl_synth {',
      `    synthetic({"${synthetic}"});`,
      '    set resp.http.X-Tail = "present";',
      '    return (deliver);',
      '}',
    ].join('\n');
    await loadAndUse(uniqueName(), vcl);

    const response = await fetch(`http://127.0.0.1:${varnishd.httpPort}/tail`);

    expect(await response.text()).toBe(synthetic);
    expect(response.headers.get('x-tail')).toBe('present');
    expect((await call('GET', '/v1/health')).status).toBe(200);
  });

  it('discards older vaas VCLs after use and keeps others', async () => {
    const manual = uniqueName('manual');
    const older = uniqueName();
    const newer = uniqueName();
    expect((await call('POST', '/v1/vcl', { name: manual, vcl: routingVcl() })).status).toBe(201);
    await loadAndUse(older, routingVcl());
    await loadAndUse(newer, routingVcl());

    // varnishd lists a discarded VCL as `discarded` until no worker thread refers to it any more.
    const names = (await listNames()).filter((item) => item.status !== 'discarded').map((item) => item.name);

    expect(names).toContain(newer);
    expect(names).toContain(manual);
    expect(names).toContain('boot');
    expect(names).not.toContain(older);
    expect(names.filter((item) => item.startsWith('vaas-'))).toEqual([newer]);
  });

  it('returns 422 for an invalid VCL name', async () => {
    const response = await call('POST', '/v1/vcl', { name: '1bad name', vcl: routingVcl() });
    const problem = (await response.json()) as { errors: { field: string }[] };

    expect(response.status).toBe(422);
    expect(problem.errors[0]?.field).toBe('name');
  });

  it('returns 422 for a name over 100 characters', async () => {
    const response = await call('POST', '/v1/vcl', { name: `a${'b'.repeat(100)}`, vcl: routingVcl() });

    expect(response.status).toBe(422);
  });

  it('returns 413 for a body over 4 MiB', async () => {
    const vcl = `vcl 4.1;\n#${'x'.repeat(4 * 1024 * 1024)}\n`;
    const response = await call('POST', '/v1/vcl', { name: uniqueName(), vcl });

    expect(response.status).toBe(413);
  });

  it('returns 400 for a body that is not JSON', async () => {
    const response = await fetch(`${agent.url}/v1/vcl`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json' },
      body: '{"name":',
    });

    expect(response.status).toBe(400);
  });

  it('returns 409 for a name already loaded', async () => {
    const name = uniqueName('dup');
    expect((await call('POST', '/v1/vcl', { name, vcl: routingVcl() })).status).toBe(201);

    const response = await call('POST', '/v1/vcl', { name, vcl: routingVcl() });

    expect(response.status).toBe(409);
  });

  it('returns 404 when activating an unknown VCL', async () => {
    const response = await call('PUT', '/v1/vcl/active', { name: 'vaas-unknown' });

    expect(response.status).toBe(404);
  });

  it('discards a loaded VCL with 204', async () => {
    const name = uniqueName('gone');
    expect((await call('POST', '/v1/vcl', { name, vcl: routingVcl() })).status).toBe(201);

    const response = await call('DELETE', `/v1/vcl/${name}`);

    expect(response.status).toBe(204);
    expect((await listNames()).map((item) => item.name)).not.toContain(name);
  });

  it('returns 404 when discarding an unknown VCL', async () => {
    const response = await call('DELETE', '/v1/vcl/vaas-never-loaded');

    expect(response.status).toBe(404);
  });

  it('returns 409 when discarding the active VCL', async () => {
    const active = (await listNames()).find((item) => item.status === 'active');

    const response = await call('DELETE', `/v1/vcl/${active?.name}`);

    expect(response.status).toBe(409);
  });

  it('returns 405 with Allow for a wrong method', async () => {
    const response = await call('PATCH', '/v1/vcl');

    expect(response.status).toBe(405);
    expect(response.headers.get('allow')).toBe('GET, POST');
  });

  it('serializes concurrent loads', async () => {
    const names = Array.from({ length: 4 }, () => uniqueName('parallel'));
    const responses = await Promise.all(
      names.map((name) => call('POST', '/v1/vcl', { name, vcl: routingVcl() })),
    );

    expect(responses.map((response) => response.status)).toEqual([201, 201, 201, 201]);
    const listed = (await listNames()).map((item) => item.name);
    for (const name of names) {
      expect(listed).toContain(name);
    }
  });

  describe('agent transport', () => {
    function serverFor(agentUrl: string): Server {
      return {
        id: 'server-1',
        cluster: 'cluster-1',
        address: '127.0.0.1',
        port: 6081,
        agentUrl,
        status: 'active',
      };
    }

    it('throws VclCompileError with the compiler message', async () => {
      const transport = createAgentTransport({ key: AGENT_KEY, timeoutMs: 10_000 });
      const load = transport(serverFor(agent.url)).loadVcl(
        uniqueName(),
        'vcl 4.1;\nsub vcl_recv { bogus; }\n',
      );

      await expect(load).rejects.toThrow(VclCompileError);
      await expect(load).rejects.toThrow(/bogus/);
    });

    it('lists, loads and uses through the agent', async () => {
      const agentClient = createAgentTransport({ key: AGENT_KEY, timeoutMs: 10_000 })(serverFor(agent.url));
      const name = uniqueName();

      await agentClient.loadVcl(name, routingVcl());
      await agentClient.useVcl(name);

      const active = (await agentClient.listVcls()).find((item) => item.status === 'active');
      expect(active?.name).toBe(name);
    });

    it('throws VarnishUnavailableError naming an unreachable agent', async () => {
      const closedPort = await findFreePort();
      const agentClient = createAgentTransport({ key: AGENT_KEY, timeoutMs: 2000 })(
        serverFor(`http://127.0.0.1:${closedPort}`),
      );
      const list = agentClient.listVcls();

      await expect(list).rejects.toThrow(VarnishUnavailableError);
      await expect(list).rejects.toThrow(`127.0.0.1:${closedPort}`);
    });

    it('throws VarnishUnavailableError for a wrong token', async () => {
      const agentClient = createAgentTransport({ key: 'wrong-key-0123456789', timeoutMs: 2000 })(
        serverFor(agent.url),
      );

      await expect(agentClient.listVcls()).rejects.toThrow(/returned 401/);
    });
  });
});
