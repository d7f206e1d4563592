// Decides what the VCL of one server contains: which directors and backends, in which order, with
// which probes and time profiles, grouped by datacenter, and under which identifiers.
//
// Identifiers are `<letter><number>_<suffix>`: the letter names the kind (d director, l local
// datacenter group, r remote group, b backend, p probe) and the number is unique within the kind,
// so no two identifiers collide whatever the suffix. Numbers come from sorted positions, so the
// same configuration always gives the same names. With names of at most 48 characters and datacenter
// names of at most 8, identifiers stay within 64 characters below 10^13 directors or probes.
import { isIP } from 'node:net';
import {
  type Backend,
  CANARY_TAG,
  type ClusterConfig,
  type Director,
  type Probe,
  type Route,
  type Server,
  type TimeProfile,
} from './model.js';
import {
  compareStrings,
  requireIdentifier,
  requireInteger,
  requireVclString,
  VclRenderError,
} from './vcl-values.js';

const DIRECTOR_NAME = /^[A-Za-z][A-Za-z0-9_-]{0,47}$/;
const DATACENTER_NAME = /^[a-z][a-z0-9]{0,7}$/;
const IP_CHARACTERS = /^[0-9A-Fa-f.:]+(?:%[A-Za-z0-9_.-]+)?$/;
const DIRECTOR_MODES = new Set(['round_robin', 'random', 'fallback', 'hash']);

export interface ProbePlan {
  /** VCL identifier, for example `p0_health`. */
  identifier: string;
  probe: Probe;
}

export interface BackendPlan {
  /** VCL identifier, for example `b0_1`: director number, then position. */
  identifier: string;
  backend: Backend;
  probe?: ProbePlan;
  timeProfile?: TimeProfile;
}

/** A set of backends behind one VCL director object. */
export interface GroupPlan {
  identifier: string;
  backends: BackendPlan[];
}

export interface DirectorPlan {
  director: Director;
  /** VCL identifier of the director object that routes use, for example `d0_api`. */
  identifier: string;
  /** Every backend declared for this director, in the order they join it. */
  backends: BackendPlan[];
  /**
   * The director objects in order of preference: one group, named `identifier`, or the local
   * datacenter's backends and then the others', when the director prefers the local datacenter.
   */
  groups: GroupPlan[];
  /** Why `backends` is empty: no enabled backend at all, or none tagged canary on a canary server. */
  emptyReason?: 'none' | 'canary';
}

export interface RoutePlan {
  route: Route;
  target: DirectorPlan;
}

export interface VclPlan {
  directors: DirectorPlan[];
  probes: ProbePlan[];
  /** Routes of the cluster whose director is in the plan, in the order they are tried. */
  routes: RoutePlan[];
  canary: boolean;
}

/** Plans the VCL of one server. Throws VclRenderError for a value that must not reach VCL. */
export function planVcl(config: ClusterConfig, server: Server): VclPlan {
  const clusterId = config.cluster.id;
  const canary = server.canary === true;
  const probes = new ProbeNamer(config.probes ?? []);
  const localName = datacenterName(config, server.datacenter);

  const directors = config.directors
    .filter((director) => director.clusters.includes(clusterId))
    .sort((a, b) => compareStrings(a.name, b.name) || compareStrings(a.id, b.id))
    .map((director, index) => {
      validateDirector(director);
      const candidates = config.backends
        .filter((backend) => backend.director === director.id && backend.enabled && backend.weight > 0)
        .filter((backend) => !canary || (backend.tags ?? []).includes(CANARY_TAG))
        .sort(
          (a, b) => compareStrings(a.id, b.id) || compareStrings(a.address, b.address) || a.port - b.port,
        );

      const backends = candidates.map((backend, position) => {
        validateBackend(backend);
        return {
          identifier: requireIdentifier(`b${index}_${position}`),
          backend,
          probe: probes.use(backend.probe ?? director.probe),
          timeProfile: findTimeProfile(config, backend.timeProfile ?? director.timeProfile),
        };
      });
      const identifier = requireIdentifier(`d${index}_${director.name.replaceAll('-', '_')}`);
      const plan: DirectorPlan = { director, identifier, backends, groups: [] };
      plan.groups = groupBackends(plan, index, server, localName);
      if (backends.length === 0) plan.emptyReason = canary ? 'canary' : 'none';
      return plan;
    });

  return { directors, probes: probes.used(), routes: planRoutes(config, directors), canary };
}

/** Lists the VCL backend identifiers of a server with the ids of the backends they stand for. */
export function vclBackendIdentifiers(
  config: ClusterConfig,
  server: Server,
): { identifier: string; backendId: string; directorId: string }[] {
  return planVcl(config, server).directors.flatMap((plan) =>
    plan.backends.map(({ identifier, backend }) => ({
      identifier,
      backendId: backend.id,
      directorId: plan.director.id,
    })),
  );
}

/** Splits a director's backends into local and remote groups when it prefers the server's datacenter. */
function groupBackends(plan: DirectorPlan, index: number, server: Server, localName: string): GroupPlan[] {
  const local = plan.backends.filter(({ backend }) => backend.datacenter === server.datacenter);
  const remote = plan.backends.filter(({ backend }) => backend.datacenter !== server.datacenter);
  const splits = plan.director.preferLocalDatacenter === true && server.datacenter !== undefined;
  if (!splits || local.length === 0 || remote.length === 0) {
    return [{ identifier: plan.identifier, backends: plan.backends }];
  }
  return [
    { identifier: requireIdentifier(`l${index}_${localName}`), backends: local },
    { identifier: requireIdentifier(`r${index}_other`), backends: remote },
  ];
}

function planRoutes(config: ClusterConfig, directors: DirectorPlan[]): RoutePlan[] {
  const byId = new Map(directors.map((plan) => [plan.director.id, plan]));
  const routes: RoutePlan[] = [];
  for (const route of config.routes ?? []) {
    const target = byId.get(route.director);
    if (!route.clusters.includes(config.cluster.id) || target === undefined) continue;
    requireInteger(route.priority, 0, 1_000_000, `route ${route.id}: priority`);
    routes.push({ route, target });
  }
  return routes.sort(
    (a, b) =>
      a.route.priority - b.route.priority ||
      compareStrings(a.route.name, b.route.name) ||
      compareStrings(a.route.id, b.route.id),
  );
}

/** Gives each probe that a declared backend uses an identifier; Varnish rejects unused probes. */
class ProbeNamer {
  private readonly sorted: Probe[];
  private readonly usedIds = new Set<string>();

  constructor(probes: Probe[]) {
    this.sorted = [...probes].sort((a, b) => compareStrings(a.name, b.name) || compareStrings(a.id, b.id));
  }

  use(probeId: string | undefined): ProbePlan | undefined {
    if (probeId === undefined) return undefined;
    const position = this.sorted.findIndex((probe) => probe.id === probeId);
    const probe = this.sorted[position];
    // A probe deleted while a write gave it to this backend (the two checks can race) is left out,
    // so the cluster still renders what exists instead of failing every reload.
    if (!probe) return undefined;
    this.usedIds.add(probe.id);
    return { identifier: this.identifier(probe, position), probe };
  }

  used(): ProbePlan[] {
    return this.sorted
      .map((probe, position) => ({ identifier: this.identifier(probe, position), probe }))
      .filter(({ probe }) => this.usedIds.has(probe.id));
  }

  private identifier(probe: Probe, position: number): string {
    if (!DIRECTOR_NAME.test(probe.name))
      throw new VclRenderError(`probe ${probe.id} has an invalid name for VCL`);
    return requireIdentifier(`p${position}_${probe.name.replaceAll('-', '_')}`);
  }
}

function findTimeProfile(config: ClusterConfig, id: string | undefined) {
  if (id === undefined) return undefined;
  // Like a deleted probe, a deleted time profile is left out rather than failing the render.
  return (config.timeProfiles ?? []).find((candidate) => candidate.id === id);
}

/** Returns the name of the server's datacenter for identifiers, or `local` when it has none or it is unknown. */
function datacenterName(config: ClusterConfig, datacenterId: string | undefined): string {
  const name = (config.datacenters ?? []).find((datacenter) => datacenter.id === datacenterId)?.name;
  if (name === undefined) return 'local';
  if (!DATACENTER_NAME.test(name))
    throw new VclRenderError(`datacenter ${datacenterId} has an invalid name for VCL`);
  return name;
}

function validateDirector(director: Director): void {
  if (!DIRECTOR_NAME.test(director.name)) {
    throw new VclRenderError(`director ${director.id} has an invalid name for VCL`);
  }
  if (!DIRECTOR_MODES.has(director.mode)) {
    throw new VclRenderError(`director ${director.id} has an unknown mode`);
  }
  if (director.router !== 'url' && director.router !== 'host') {
    throw new VclRenderError(`director ${director.id} has an unknown router`);
  }
  const expression = requireVclString(director.routeExpression, `director ${director.id}: routeExpression`);
  if (expression === '') {
    throw new VclRenderError(`director ${director.id}: routeExpression must not be empty`);
  }
}

function validateBackend(backend: Backend): void {
  const address = backend.address;
  if (typeof address !== 'string' || isIP(address) === 0 || !IP_CHARACTERS.test(address)) {
    throw new VclRenderError(`backend ${backend.id}: address must be an IPv4 or IPv6 address`);
  }
  requireInteger(backend.port, 1, 65_535, `backend ${backend.id}: port`);
  requireInteger(backend.weight, 0, 100, `backend ${backend.id}: weight`);
}
