import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestStack, type TestStack, waitForTask } from '../support/stack.js';

// Any API caller can register a server with an agentUrl of their choice. The reload then sends
// that URL a bearer token, which must not open the real agents of the fleet.

let stack: TestStack;
let rogue: Server;
const capturedTokens: string[] = [];

beforeAll(async () => {
  stack = await startTestStack({ varnishCount: 1, backendCount: 0 });
  rogue = createServer((request, response) => {
    capturedTokens.push(String(request.headers.authorization ?? ''));
    response.writeHead(503).end();
  });
  await new Promise<void>((resolve) => rogue.listen(0, '127.0.0.1', resolve));
});

afterAll(async () => {
  await new Promise((resolve) => rogue?.close(resolve));
  await stack?.stop();
});

describe('agent tokens', () => {
  it('sends a rogue agentUrl a token the real agent rejects', async () => {
    const cluster = (await stack.api('POST', '/v1/clusters', { name: 'rogue' })).body;
    const rogueUrl = `http://127.0.0.1:${(rogue.address() as AddressInfo).port}`;
    const created = await stack.api(
      'POST',
      '/v1/servers',
      { cluster: cluster.id, address: '127.0.0.1', port: 1, agentUrl: rogueUrl },
      { prefer: 'respond-async' },
    );
    expect(created.status).toBe(202);
    expect((await waitForTask(stack, created.body.taskId)).status).toBe('failed');

    expect(capturedTokens.length).toBeGreaterThan(0);
    const realAgent = stack.fleet.nodes[0]?.agent.url;
    for (const authorization of new Set(capturedTokens)) {
      const response = await fetch(`${realAgent}/v1/vcl`, { headers: { authorization } });
      expect(response.status).toBe(401);
    }
  });

  it('rejects an agentUrl with credentials', async () => {
    const cluster = (await stack.api('POST', '/v1/clusters', { name: 'credentials' })).body;
    const response = await stack.api('POST', '/v1/servers', {
      cluster: cluster.id,
      address: '127.0.0.1',
      port: 1,
      agentUrl: 'http://user:secret@127.0.0.1:6085',
    });
    expect(response.status).toBe(422);
    expect(response.body.errors[0].field).toBe('agentUrl');
    expect(JSON.stringify(response.body)).not.toContain('secret@');
  });
});
