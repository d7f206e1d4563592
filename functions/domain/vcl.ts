// Renders the VCL 4.1 of one Varnish server from a cluster's configuration.
//
// VCL strings have no escapes, so a double quote or a line break in a value would end the string and
// let the rest run as VCL. model.ts rejects such input, and the renderer checks every value again.
// User strings appear only in three places. Route values, probe URLs and backend hosts are quoted.
// Director, probe and datacenter names appear inside identifiers after a check against the name
// rule. The text of the cluster's template cannot leave its subroutines (see vcl-template.ts).
import type { ClusterConfig, Server } from './model.js';
import { renderBackend, renderInit, renderProbe } from './vcl-backends.js';
import { planVcl } from './vcl-plan.js';
import { renderRecv } from './vcl-recv.js';
import { renderTemplateSubs } from './vcl-template.js';

export { hashFromVclName, vclContentHash, vclNameFor } from './vcl-names.js';
export { vclBackendIdentifiers } from './vcl-plan.js';
export { VclRenderError } from './vcl-values.js';

/**
 * Renders the VCL for one server of the cluster: its datacenter and its canary flag select the
 * backends. The output depends only on the configuration and the server (no timestamps), so its
 * content hash identifies it.
 */
export function renderVcl(config: ClusterConfig, server: Server): string {
  const plan = planVcl(config, server);
  const sections = [
    'vcl 4.1;',
    // Imported always, so that template blocks can use them too; an unused import compiles.
    'import cookie;\nimport directors;\nimport std;',
    // The first declared backend is the default. `none` makes a request without a backend hint
    // fail instead of reaching an arbitrary backend, and lets a VCL without backends compile.
    'backend default none;',
    ...plan.probes.map(renderProbe),
    ...plan.directors.flatMap((director) => director.backends.map(renderBackend)),
  ];

  const init = renderInit(plan.directors);
  if (init) sections.push(init);
  sections.push(renderRecv(plan));
  if (config.template) sections.push(...renderTemplateSubs(config.template, config.cluster.variables ?? {}));
  return `${sections.join('\n\n')}\n`;
}
