// `npm run bench`: prints latency and throughput numbers of the local request flow. It starts
// the same stack as the integration tests (dynalite, fauxqs, the sync-request state machine and
// two real varnishd with agents, VCL compiled with -O0) and measures through the HTTP API.
// Results depend on the machine; record them with its description in docs/benchmarks.md.
import { performance } from 'node:perf_hooks';
import type { ClusterConfig } from '../functions/domain/model.js';
import { renderVcl } from '../functions/domain/vcl.js';
import { startTestStack, type TestStack, waitForTask } from '../test/support/stack.js';

function percentile(samples: number[], fraction: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(fraction * sorted.length))] ?? Number.NaN;
}

function report(name: string, samples: number[], unit = 'ms') {
  const p50 = percentile(samples, 0.5).toFixed(1);
  const p95 = percentile(samples, 0.95).toFixed(1);
  console.log(
    `${name.padEnd(44)} n=${String(samples.length).padEnd(4)} p50=${p50} ${unit}  p95=${p95} ${unit}`,
  );
}

function benchRender() {
  for (const backendCount of [10, 200, 1000]) {
    const config: ClusterConfig = {
      cluster: { id: 'c', name: 'bench' },
      servers: [],
      directors: [
        { id: 'd', name: 'web', clusters: ['c'], mode: 'round_robin', router: 'url', routeExpression: '^/' },
      ],
      backends: Array.from({ length: backendCount }, (_, index) => ({
        id: `b${String(index).padStart(5, '0')}`,
        director: 'd',
        address: `10.0.${Math.floor(index / 250)}.${(index % 250) + 1}`,
        port: 8080,
        weight: 1,
        enabled: true,
      })),
    };
    const server = { id: 's', cluster: 'c', address: '127.0.0.1', port: 6081, status: 'active' as const };
    const samples = Array.from({ length: 50 }, () => {
      const started = performance.now();
      renderVcl(config, server);
      return performance.now() - started;
    });
    report(`render VCL, ${backendCount} backends`, samples);
  }
}

async function setUpCluster(stack: TestStack) {
  const cluster = (await stack.api('POST', '/v1/clusters', { name: 'bench' })).body;
  for (const node of stack.fleet.nodes) {
    await stack.api('POST', '/v1/servers', {
      cluster: cluster.id,
      address: '127.0.0.1',
      port: node.varnishd.httpPort,
      agentUrl: node.agent.url,
    });
  }
  const director = await stack.api('POST', '/v1/directors', {
    name: 'web',
    clusters: [cluster.id],
    routeExpression: '^/',
  });
  return director.body.id as string;
}

async function timed(call: () => Promise<{ status: number }>, expected: number) {
  const started = performance.now();
  const response = await call();
  if (response.status !== expected) throw new Error(`expected ${expected}, got ${response.status}`);
  return performance.now() - started;
}

async function benchFlow() {
  const stack = await startTestStack({ varnishCount: 2, backendCount: 1 });
  try {
    const directorId = await setUpCluster(stack);
    const backend = (port: number) => ({ director: directorId, address: '127.0.0.1', port });

    const reads: number[] = [];
    for (let index = 0; index < 200; index++)
      reads.push(await timed(() => stack.api('GET', '/v1/backends'), 200));
    report('GET /v1/backends', reads);

    const sync: number[] = [];
    for (let index = 0; index < 20; index++) {
      sync.push(await timed(() => stack.api('POST', '/v1/backends', backend(30_000 + index)), 201));
    }
    report('sync POST /v1/backends (2 varnishd reload)', sync);

    const async: number[] = [];
    const taskIds: string[] = [];
    const reloadsBefore = stack.counts.reloads;
    const burstStarted = performance.now();
    for (let index = 0; index < 100; index++) {
      const started = performance.now();
      const response = await stack.api('POST', '/v1/backends', backend(31_000 + index), {
        prefer: 'respond-async',
      });
      async.push(performance.now() - started);
      taskIds.push(response.body.taskId);
    }
    report('async POST /v1/backends (202)', async);

    for (const taskId of taskIds) await waitForTask(stack, taskId, 120_000);
    const burstSeconds = (performance.now() - burstStarted) / 1000;
    console.log(
      `100 async writes live in ${burstSeconds.toFixed(1)} s with ${stack.counts.reloads - reloadsBefore} more reloads ` +
        `(${stack.counts.skippedTasks} tasks skipped in all)`,
    );
  } finally {
    await stack.stop();
  }
}

async function main() {
  console.log(`node ${process.version}, ${new Date().toISOString()}`);
  benchRender();
  await benchFlow();
  console.log(`peak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB`);
}

await main();
