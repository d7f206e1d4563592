import type { DemoFleet } from './demo-fleet.js';

/** Prints where vaas listens and curl commands that build a demo cluster step by step. */
export function printQuickStart(
  apiUrl: string,
  dataDir: string,
  fleet: DemoFleet | undefined,
  savedClusters: number,
): void {
  const lines = ['', `vaas API: ${apiUrl}   (data: ${dataDir}; Ctrl-C stops everything)`];

  if (!fleet) {
    lines.push(
      "varnishd was not found (or VAAS_DEMO=off), so no demo fleet runs. Install Debian's varnish package for it,",
      'or register your own servers that run the vaas agent (see README.md).',
      '',
    );
    console.log(lines.join('\n'));
    return;
  }

  if (savedClusters > 0) {
    lines.push(
      `${savedClusters} cluster(s) saved by an earlier run are back and are being reloaded. Inspect them with:`,
      '',
      `  curl -s ${apiUrl}/v1/clusters`,
      `  curl -s ${apiUrl}/v1/servers`,
      '',
      `To start over with an empty demo, stop vaas and remove ${dataDir}.`,
      '',
    );
    console.log(lines.join('\n'));
    return;
  }

  const [first, second] = fleet.nodes;
  const [backendOne, backendTwo] = fleet.backends;
  if (!first || !second || !backendOne || !backendTwo)
    throw new Error('the demo fleet has two nodes and two backends');

  lines.push(
    `demo varnishd: 127.0.0.1:${first.varnishd.httpPort} and 127.0.0.1:${second.varnishd.httpPort} (agents ${first.agent.url}, ${second.agent.url})`,
    `demo backends: 127.0.0.1:${backendOne.port} (backend-1) and 127.0.0.1:${backendTwo.port} (backend-2)`,
    '',
    'Try it (each write answers once both varnishd run the new VCL):',
    '',
    `  CLUSTER=$(curl -s -X POST ${apiUrl}/v1/clusters -H 'content-type: application/json' \\`,
    `    -d '{"name":"demo"}' | sed -E 's/.*"id":"([^"]+)".*/\\1/'); echo $CLUSTER`,
    ...[first, second].map(
      (node) =>
        `  curl -s -X POST ${apiUrl}/v1/servers -H 'content-type: application/json' \\\n` +
        `    -d '{"cluster":"'$CLUSTER'","address":"127.0.0.1","port":${node.varnishd.httpPort},"agentUrl":"${node.agent.url}"}'`,
    ),
    `  DIRECTOR=$(curl -s -X POST ${apiUrl}/v1/directors -H 'content-type: application/json' \\`,
    `    -d '{"name":"web","clusters":["'$CLUSTER'"],"routeExpression":"^/"}' | sed -E 's/.*"id":"([^"]+)".*/\\1/')`,
    `  curl -s -i -X POST ${apiUrl}/v1/backends -H 'content-type: application/json' \\`,
    `    -d '{"director":"'$DIRECTOR'","address":"127.0.0.1","port":${backendOne.port}}'`,
    `  curl -s http://127.0.0.1:${first.varnishd.httpPort}/hello http://127.0.0.1:${second.varnishd.httpPort}/hello`,
    '',
    'Asynchronously: 202 at once, then poll the task in Location:',
    '',
    `  curl -s -i -X POST ${apiUrl}/v1/backends -H 'content-type: application/json' -H 'Prefer: respond-async' \\`,
    `    -d '{"director":"'$DIRECTOR'","address":"127.0.0.1","port":${backendTwo.port}}'`,
    `  curl -s ${apiUrl}/v1/tasks/TASK_ID_FROM_LOCATION`,
    `  curl -s ${apiUrl}/v1/clusters/$CLUSTER`,
    '',
  );
  console.log(lines.join('\n'));
}
