// Renders the VCL 4.1 of one Varnish server from a cluster's configuration, and names loaded VCLs.
//
// VCL strings have no escapes, so a double quote or a line break in a value would end the string and
// let the rest run as VCL. model.ts rejects such input, and the renderer checks every value again.
// User strings appear only as quoted route expressions and backend hosts, and director names (after
// a check against the name rule) inside identifiers.
import { createHash, randomInt } from 'node:crypto';
import { isIP } from 'node:net';
import { VaasError } from './errors.js';
import type { Backend, ClusterConfig, Director, Server } from './model.js';

/** The configuration contains a value that must not reach VCL, which model validation should have rejected. */
export class VclRenderError extends VaasError {
  override readonly statusCode = 500;
  override readonly title = 'Internal Server Error';
}

const INDENT = '    ';
const DIRECTOR_NAME = /^[A-Za-z][A-Za-z0-9_-]{0,47}$/;
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this rejects.
const UNSAFE_IN_VCL_STRING = /["\u0000-\u001f\u007f]/;
const IP_CHARACTERS = /^[0-9A-Fa-f.:]+(?:%[A-Za-z0-9_.-]+)?$/;
const VAAS_VCL_NAME = /^vaas-([0-9a-f]{16})-[0-9a-z]+-[0-9a-z]{4}$/;

const DIRECTOR_CONSTRUCTORS = {
  round_robin: 'directors.round_robin()',
  random: 'directors.random()',
  fallback: 'directors.fallback()',
  hash: 'directors.hash()',
} as const;

interface DirectorPlan {
  director: Director;
  /** VCL identifier of the director object, for example `d0_api`. */
  identifier: string;
  /** Declared backends with their VCL identifiers, in the order they join the director. */
  backends: { identifier: string; backend: Backend }[];
}

/**
 * Renders the VCL for one server of the cluster.
 *
 * Every server of a cluster gets the same VCL today. The output depends only on the configuration
 * (no timestamps), so its content hash identifies it.
 */
export function renderVcl(config: ClusterConfig, _server: Server): string {
  const plans = planDirectors(config);
  const sections = [
    'vcl 4.1;',
    'import directors;',
    // The first declared backend is the default. `none` makes a request without a backend hint
    // fail instead of reaching an arbitrary backend, and lets a VCL without backends compile.
    'backend default none;',
    ...plans.flatMap((plan) =>
      plan.backends.map(({ identifier, backend }) => renderBackend(identifier, backend)),
    ),
  ];

  const init = renderInit(plans);
  if (init) {
    sections.push(init);
  }
  sections.push(renderRecv(plans));
  return `${sections.join('\n\n')}\n`;
}

/** Returns the SHA-256 of the VCL text as lowercase hex. */
export function vclContentHash(vcl: string): string {
  return createHash('sha256').update(vcl, 'utf8').digest('hex');
}

/**
 * Returns a unique VCL name `vaas-<first 16 hex of the hash>-<ms since epoch in base36>-<4 random
 * base36>`, which matches varnishd's rule `[A-Za-z][A-Za-z0-9_-]*`.
 */
export function vclNameFor(hash: string, now: Date): string {
  if (!/^[0-9a-f]{16,}$/.test(hash)) {
    throw new VclRenderError(`invalid content hash ${JSON.stringify(hash)}: expected lowercase hex`);
  }
  const suffix = randomInt(36 ** 4)
    .toString(36)
    .padStart(4, '0');
  return `vaas-${hash.slice(0, 16)}-${now.getTime().toString(36)}-${suffix}`;
}

/** Returns the 16 hex characters of content hash in a name from vclNameFor, or undefined for any other name. */
export function hashFromVclName(name: string): string | undefined {
  return VAAS_VCL_NAME.exec(name)?.[1];
}

function planDirectors(config: ClusterConfig): DirectorPlan[] {
  const directors = config.directors
    .filter((director) => director.clusters.includes(config.cluster.id))
    .sort((a, b) => compareStrings(a.name, b.name) || compareStrings(a.id, b.id));

  return directors.map((director, index) => {
    validateDirector(director);
    const backends = config.backends
      .filter((backend) => backend.director === director.id && backend.enabled && backend.weight > 0)
      .sort((a, b) => compareStrings(a.id, b.id) || compareStrings(a.address, b.address) || a.port - b.port);

    return {
      director,
      identifier: `d${index}_${director.name.replaceAll('-', '_')}`,
      backends: backends.map((backend, position) => {
        validateBackend(backend);
        return { identifier: `b${index}_${position}`, backend };
      }),
    };
  });
}

function renderBackend(identifier: string, backend: Backend): string {
  return [
    `backend ${identifier} {`,
    `${INDENT}.host = "${backend.address}";`,
    `${INDENT}.port = "${backend.port}";`,
    '}',
  ].join('\n');
}

/** Renders vcl_init, or undefined when no director has a backend. */
function renderInit(plans: DirectorPlan[]): string | undefined {
  const lines: string[] = [];
  for (const { director, identifier, backends } of plans) {
    if (backends.length === 0) {
      continue;
    }

    lines.push(`${INDENT}new ${identifier} = ${DIRECTOR_CONSTRUCTORS[director.mode]};`);
    for (const { identifier: backendIdentifier, backend } of backends) {
      const weighted = director.mode === 'random' || director.mode === 'hash';
      const args = weighted ? `${backendIdentifier}, ${backend.weight}` : backendIdentifier;
      lines.push(`${INDENT}${identifier}.add_backend(${args});`);
    }
  }
  return lines.length === 0 ? undefined : ['sub vcl_init {', ...lines, '}'].join('\n');
}

function renderRecv(plans: DirectorPlan[]): string {
  const noRoute = 'return (synth(404, "No route"));';
  if (plans.length === 0) {
    return ['sub vcl_recv {', `${INDENT}${noRoute}`, '}'].join('\n');
  }

  const lines = ['sub vcl_recv {'];
  plans.forEach((plan, index) => {
    const subject = plan.director.router === 'host' ? 'req.http.host' : 'req.url';
    const keyword = index === 0 ? 'if' : '} elsif';
    lines.push(`${INDENT}${keyword} (${subject} ~ "${plan.director.routeExpression}") {`);
    lines.push(`${INDENT}${INDENT}${routeAction(plan)}`);
  });
  lines.push(`${INDENT}} else {`, `${INDENT}${INDENT}${noRoute}`, `${INDENT}}`, '}');
  return lines.join('\n');
}

function routeAction({ director, identifier, backends }: DirectorPlan): string {
  if (backends.length === 0) {
    return 'return (synth(503, "No backend available for this route"));';
  }
  const pick = director.mode === 'hash' ? `${identifier}.backend(req.url)` : `${identifier}.backend()`;
  return `set req.backend_hint = ${pick};`;
}

function validateDirector(director: Director): void {
  if (!DIRECTOR_NAME.test(director.name)) {
    throw new VclRenderError(`director ${director.id} has an invalid name for VCL`);
  }
  if (!Object.hasOwn(DIRECTOR_CONSTRUCTORS, director.mode)) {
    throw new VclRenderError(`director ${director.id} has an unknown mode`);
  }
  if (director.router !== 'url' && director.router !== 'host') {
    throw new VclRenderError(`director ${director.id} has an unknown router`);
  }
  const expression = director.routeExpression;
  if (typeof expression !== 'string' || expression === '' || UNSAFE_IN_VCL_STRING.test(expression)) {
    throw new VclRenderError(
      `director ${director.id}: routeExpression must be non-empty and contain no double quote or control character`,
    );
  }
}

function validateBackend(backend: Backend): void {
  const address = backend.address;
  if (typeof address !== 'string' || isIP(address) === 0 || !IP_CHARACTERS.test(address)) {
    throw new VclRenderError(`backend ${backend.id}: address must be an IPv4 or IPv6 address`);
  }
  if (!Number.isInteger(backend.port) || backend.port < 1 || backend.port > 65_535) {
    throw new VclRenderError(`backend ${backend.id}: port must be an integer from 1 to 65535`);
  }
  if (!Number.isInteger(backend.weight) || backend.weight > 100) {
    throw new VclRenderError(`backend ${backend.id}: weight must be an integer from 0 to 100`);
  }
}

/** Compares by UTF-16 code units, so the order does not depend on the locale. */
function compareStrings(a: string, b: string): number {
  if (a === b) {
    return 0;
  }
  return a < b ? -1 : 1;
}
