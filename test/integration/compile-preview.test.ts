import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Server } from '../../functions/domain/model.js';
import { createFleetCluster, startTestStack, type TestStack, throughVarnish } from '../support/stack.js';

// Compile before commit and the VCL preview, on the local runtime with two real varnishd servers.

let stack: TestStack;
let clusterId: string;
let directorId: string;
let servers: Server[];

beforeAll(async () => {
  stack = await startTestStack({ varnishCount: 2, backendCount: 1 });
  clusterId = await createFleetCluster(stack, 'compiled');
  servers = (await stack.api('GET', '/v1/servers')).body.items;
  const director = await stack.api('POST', '/v1/directors', {
    name: 'app',
    clusters: [clusterId],
    routeExpression: '^/app/',
  });
  directorId = director.body.id;
  await stack.api('POST', '/v1/backends', {
    director: directorId,
    address: '127.0.0.1',
    port: stack.fleet.backends[0]?.port,
  });
});

afterAll(async () => {
  await stack?.stop();
});

// JavaScript accepts a lookbehind of variable length; varnishd's PCRE2 does not.
const PCRE2_REJECTS = '(?<=a+)b';

describe('compile before commit', () => {
  it('returns 422 with line and position', async () => {
    const loadsBefore = stack.loads.length;

    const response = await stack.api('POST', '/v1/directors', {
      name: 'broken',
      clusters: [clusterId],
      routeExpression: PCRE2_REJECTS,
    });

    expect(response.status).toBe(422);
    expect(response.headers.get('content-type')).toBe('application/problem+json');
    expect(response.body.compiler.message).toContain('lookbehind assertion is not fixed length');
    expect(response.body.compiler.line).toBeGreaterThan(0);
    expect(response.body.compiler.position).toBeGreaterThan(0);
    expect(response.body.compiler.source).toContain(PCRE2_REJECTS);
    expect(response.body.compiler.cluster).toBe(clusterId);
    expect(response.body.detail).toContain(`at line ${response.body.compiler.line}, position`);
    const names = (await stack.api('GET', '/v1/directors')).body.items.map(
      (item: { name: string }) => item.name,
    );
    expect(names).not.toContain('broken');
    expect(stack.loads.length).toBe(loadsBefore);
    expect(await stack.runtime.deps.tasks.listOutbox()).toEqual([]);
  });

  it('keeps the director on a failed patch', async () => {
    const response = await stack.api('PATCH', `/v1/directors/${directorId}`, {
      routeExpression: PCRE2_REJECTS,
    });

    expect(response.status).toBe(422);
    expect((await stack.api('GET', `/v1/directors/${directorId}`)).body.routeExpression).toBe('^/app/');
    expect((await stack.api('GET', `/v1/directors/${directorId}/history`)).body.items[0].action).toBe(
      'create',
    );
  });

  it('rejects a route condition PCRE2 rejects', async () => {
    const response = await stack.api('POST', '/v1/routes', {
      name: 'lookbehind',
      priority: 1,
      director: directorId,
      clusters: [clusterId],
      condition: { all: [{ field: 'url', operator: 'matches', value: PCRE2_REJECTS }] },
    });

    expect(response.status).toBe(422);
    expect(response.body.compiler.source).toContain(PCRE2_REJECTS);
    expect((await stack.api('GET', '/v1/routes')).body.items).toEqual([]);
  });

  it('rejects a template block that does not compile', async () => {
    const template = await stack.api('POST', '/v1/vcl-templates', {
      name: 'team',
      blocks: { deliver: 'set resp.http.x-team = "a";' },
    });
    expect(
      (await stack.api('PATCH', `/v1/clusters/${clusterId}`, { template: template.body.id })).status,
    ).toBe(200);

    const response = await stack.api('PATCH', `/v1/vcl-templates/${template.body.id}`, {
      blocks: { deliver: 'set resp.http.x-team = ;' },
    });

    expect(response.status).toBe(422);
    expect(response.body.compiler.message).toContain("Unknown token ';'");
    expect(response.body.compiler.source).toContain('set resp.http.x-team = ;');
    expect(response.body.compiler.position).toBeGreaterThan(0);
    const saved = await stack.api('GET', `/v1/vcl-templates/${template.body.id}`);
    expect(saved.body.blocks.deliver).toBe('set resp.http.x-team = "a";');
  });

  it('rejects a backend delete that breaks a template', async () => {
    const cluster = (await stack.api('GET', `/v1/clusters/${clusterId}`)).body;
    const rendered = (await stack.api('GET', `/v1/clusters/${clusterId}/vcl?server=${servers[0]?.id}`)).body
      .vcl;
    const identifier = /new (d\d+_app) =/.exec(rendered)?.[1];
    expect(identifier).toBeDefined();
    const block = `if (req.url ~ "^/tpl") { set req.backend_hint = ${identifier}.backend(); }`;
    const patched = await stack.api('PATCH', `/v1/vcl-templates/${cluster.template}`, {
      blocks: { recv: block },
    });
    expect(patched.status).toBe(200);

    // Without backends the director is not declared, so the block would name a missing symbol.
    const backend = (await stack.api('GET', '/v1/backends')).body.items[0];
    const removed = await stack.api('DELETE', `/v1/backends/${backend.id}`);
    expect(removed.status).toBe(422);
    expect(removed.body.compiler.message).toContain(identifier);
    expect((await stack.api('GET', `/v1/backends/${backend.id}`)).status).toBe(200);

    const reset = await stack.api('PATCH', `/v1/vcl-templates/${cluster.template}`, {
      blocks: { deliver: 'set resp.http.x-team = "a";' },
    });
    expect(reset.status).toBe(200);
  });

  it('leaves no compile VCL loaded', async () => {
    for (const server of servers) {
      const loaded = await stack.runtime.deps.transport(server).listVcls();
      expect(loaded.filter((vcl) => vcl.name.startsWith('vaas-compile-'))).toEqual([]);
    }
  });

  it('returns 503 without a reachable server', async () => {
    await stack.stopAgent(0);
    await stack.stopAgent(1);
    try {
      const response = await stack.api('PATCH', `/v1/directors/${directorId}`, {
        routeExpression: '^/moved/',
      });

      expect(response.status).toBe(503);
      expect(response.body.detail).toContain('nothing was saved');
      expect((await stack.api('GET', `/v1/directors/${directorId}`)).body.routeExpression).toBe('^/app/');
    } finally {
      await stack.restartAgent(0);
      await stack.restartAgent(1);
    }
  });

  it('saves and serves a compiling change', async () => {
    const response = await stack.api('PATCH', `/v1/directors/${directorId}`, {
      routeExpression: '^/(app|web)/',
    });

    expect(response.status).toBe(200);
    for (const node of stack.fleet.nodes) {
      expect((await throughVarnish(node.varnishd.httpPort, '/web/x')).backend).toBe('backend-1');
    }
  });
});

describe('preview', () => {
  it('shows current servers with empty diffs', async () => {
    const { status, body } = await stack.api('GET', `/v1/clusters/${clusterId}/vcl`);

    expect(status).toBe(200);
    expect(body.servers).toHaveLength(2);
    for (const server of body.servers) {
      const single = await stack.api('GET', `/v1/clusters/${clusterId}/vcl?server=${server.server}`);
      expect(server.vcl).toBe(single.body.vcl);
      expect(server.diff).toBe('');
      expect(server.outdated).toBe(false);
      expect(server.active.vclHash).toBe(server.vclHash);
      expect(server.applied.vclHash).toBe(server.vclHash);
    }
  });

  it('marks a hand-edited server outdated', async () => {
    const target = servers.find(
      (server) => server.port === stack.fleet.nodes[0]?.varnishd.httpPort,
    ) as Server;
    const rendered = (await stack.api('GET', `/v1/clusters/${clusterId}/vcl?server=${target.id}`)).body.vcl;
    const agent = stack.runtime.deps.transport(target);
    await agent.loadVcl('manual-edit', `${rendered}# edited by hand\n`);
    await agent.useVcl('manual-edit');

    const { body } = await stack.api('GET', `/v1/clusters/${clusterId}/vcl`);
    const edited = body.servers.find((server: { server: string }) => server.server === target.id);
    const other = body.servers.find((server: { server: string }) => server.server !== target.id);

    expect(edited.outdated).toBe(true);
    expect(edited.active.name).toBe('manual-edit');
    expect(edited.diff).toContain('--- active/manual-edit\n+++ rendered\n');
    expect(edited.diff).toContain('\n-# edited by hand\n');
    expect(other.outdated).toBe(false);
    expect(other.diff).toBe('');
  });

  it('reports an unreachable server', async () => {
    await stack.stopAgent(1);
    try {
      const { status, body } = await stack.api('GET', `/v1/clusters/${clusterId}/vcl`);
      const down = body.servers.find(
        (server: { port: number }) => server.port === stack.fleet.nodes[1]?.varnishd.httpPort,
      );

      expect(status).toBe(200);
      expect(down.active).toBeNull();
      expect(down.outdated).toBeNull();
      expect(down.error).toContain('unreachable');
    } finally {
      await stack.restartAgent(1);
    }
  });
});
