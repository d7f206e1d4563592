// Renders the declarations of a server's VCL: probes, backends with their time profiles, and the
// director objects of vcl_init.
import type { BackendPlan, DirectorPlan, GroupPlan, ProbePlan } from './vcl-plan.js';
import { requireInteger, requireVclString, VclRenderError, vclDuration } from './vcl-values.js';

const INDENT = '    ';
const PROBE_URL = /^\/[!#-~]{0,255}$/;

const DIRECTOR_CONSTRUCTORS = {
  round_robin: 'directors.round_robin()',
  random: 'directors.random()',
  fallback: 'directors.fallback()',
  hash: 'directors.hash()',
} as const;

export function renderProbe({ identifier, probe }: ProbePlan): string {
  const label = `probe ${probe.id}`;
  const url = requireVclString(probe.url, `${label}: url`);
  if (!PROBE_URL.test(url))
    throw new VclRenderError(`${label}: url must be a path of visible ASCII characters`);
  const window = requireInteger(probe.window, 1, 64, `${label}: window`);
  const threshold = requireInteger(probe.threshold, 1, window, `${label}: threshold`);

  const fields = [
    `.url = "${url}";`,
    `.expected_response = ${requireInteger(probe.expectedStatus, 100, 599, `${label}: expectedStatus`)};`,
    `.interval = ${vclDuration(probe.intervalSeconds, `${label}: intervalSeconds`)};`,
    `.timeout = ${vclDuration(probe.timeoutSeconds, `${label}: timeoutSeconds`)};`,
    `.window = ${window};`,
    `.threshold = ${threshold};`,
  ];
  // Varnish starts a backend with threshold - 1 good probes by default, so one good probe makes it healthy.
  if (probe.startHealthy === true) fields.push(`.initial = ${threshold};`);
  return block(`probe ${identifier}`, fields);
}

export function renderBackend({ identifier, backend, probe, timeProfile }: BackendPlan): string {
  const fields = [`.host = "${backend.address}";`, `.port = "${backend.port}";`];
  if (probe) fields.push(`.probe = ${probe.identifier};`);
  if (timeProfile) {
    const label = `time profile ${timeProfile.id}`;
    fields.push(
      `.connect_timeout = ${vclDuration(timeProfile.connectTimeoutSeconds, `${label}: connectTimeoutSeconds`)};`,
      `.first_byte_timeout = ${vclDuration(timeProfile.firstByteTimeoutSeconds, `${label}: firstByteTimeoutSeconds`)};`,
      `.between_bytes_timeout = ${vclDuration(timeProfile.betweenBytesTimeoutSeconds, `${label}: betweenBytesTimeoutSeconds`)};`,
    );
    if (timeProfile.maxConnections !== undefined) {
      const max = requireInteger(timeProfile.maxConnections, 1, 100_000, `${label}: maxConnections`);
      fields.push(`.max_connections = ${max};`);
    }
  }
  return block(`backend ${identifier}`, fields);
}

/**
 * Renders vcl_init, or undefined when no director has a backend. A director split by datacenter
 * gets one object per group. Unless it hashes, a `directors.fallback()` over the groups then takes
 * the director's identifier, so the local group serves while any of its backends is healthy.
 */
export function renderInit(plans: DirectorPlan[]): string | undefined {
  const lines: string[] = [];
  for (const plan of plans) {
    if (plan.backends.length === 0) continue;

    for (const group of plan.groups) lines.push(...renderGroup(plan, group));
    if (plan.groups.length > 1 && plan.director.mode !== 'hash') {
      lines.push(`new ${plan.identifier} = ${DIRECTOR_CONSTRUCTORS.fallback};`);
      for (const group of plan.groups)
        lines.push(`${plan.identifier}.add_backend(${group.identifier}.backend());`);
    }
  }
  return lines.length === 0 ? undefined : block('sub vcl_init', lines);
}

function renderGroup({ director }: DirectorPlan, group: GroupPlan): string[] {
  const weighted = director.mode === 'random' || director.mode === 'hash';
  const lines = [`new ${group.identifier} = ${DIRECTOR_CONSTRUCTORS[director.mode]};`];
  for (const { identifier, backend } of group.backends) {
    const args = weighted ? `${identifier}, ${backend.weight}` : identifier;
    lines.push(`${group.identifier}.add_backend(${args});`);
  }
  return lines;
}

/** Renders `head { … }` with one indented line per entry. */
export function block(head: string, lines: string[]): string {
  return [`${head} {`, ...lines.map((line) => (line === '' ? '' : `${INDENT}${line}`)), '}'].join('\n');
}
