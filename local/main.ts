// `npm start`: the whole request flow on this machine. The API listens on 127.0.0.1:$PORT
// (default 3000), data stays in .vaas/data between runs, and where varnishd is installed a demo
// fleet of two varnishd instances with agents and two demo backends starts beside it.
import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import { logger } from '../functions/shared/logger.js';
import { type DemoFleet, startDemoFleet } from './demo-fleet.js';
import { printQuickStart } from './quick-start.js';
import { startLocalRuntime } from './runtime.js';
import { findVarnishd } from './varnishd.js';

const port = Number(process.env.PORT ?? 3000);
const dataDir = resolve(process.env.VAAS_DATA_DIR ?? '.vaas/data');
// Demo ports: varnish HTTP 6081-6082, agents 6281-6282, backends 8081-8082, unless moved by the variable.
const demoPortBase = Number(process.env.VAAS_DEMO_PORT_BASE ?? 6081);

async function main() {
  await mkdir(dataDir, { recursive: true });
  // The reload handler derives each demo agent's token from a key made for this run.
  const agentKey = process.env.VAAS_AGENT_KEY ?? randomBytes(24).toString('hex');

  let fleet: DemoFleet | undefined;
  if (findVarnishd() && process.env.VAAS_DEMO !== 'off') {
    fleet = await startDemoFleet({
      varnishCount: 2,
      backendCount: 2,
      agentKey,
      fastCompile: true,
      ports: { varnish: demoPortBase, agent: demoPortBase + 200, backend: demoPortBase + 2000 },
    });
  }

  // The fleet check reloads every cluster each minute, so a varnishd restarted by hand gets its VCL back.
  const runtime = await startLocalRuntime({ port, dataDir, agentKey, resyncAfterMs: 60_000 }).catch(
    async (error) => {
      await fleet?.stop();
      throw error;
    },
  );

  // Clusters saved by an earlier run point at varnishd instances that restarted without their
  // VCL, so every cluster is reloaded once. Servers already up to date are skipped.
  const resynced = await runtime.resyncAll();
  if (resynced.length > 0)
    logger.info('reloading the clusters saved by an earlier run', { clusters: resynced });
  printQuickStart(runtime.apiUrl, dataDir, fleet, resynced.length);

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info('stopping', { signal });
    await runtime.stop();
    await fleet?.stop();
    process.exit(0);
  };
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => void stop(signal));
}

main().catch((error: unknown) => {
  console.error(`vaas did not start: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
