// Lookups between resources that the kind specs share: existence and name checks, the clusters
// whose VCL an entity reaches, and the check of a cluster's template against its variables.
import { ConflictError, type FieldProblem, ValidationError } from '../domain/errors.js';
import type { Cluster, VclTemplate } from '../domain/model.js';
import { templateProblems } from '../domain/vcl-template.js';
import type { ConfigStore, EntityKind } from '../ports.js';

/** Throws ValidationError naming `field` when the entity does not exist. */
export async function requireExisting(config: ConfigStore, kind: EntityKind, id: string, field: string) {
  if (await config.get(kind, id)) return;
  throw new ValidationError([{ field, message: `${kind} ${id} does not exist` }]);
}

/** Checks optional references, each given as [kind, id or undefined, field]. */
export async function requireExistingAll(
  config: ConfigStore,
  references: [EntityKind, string | undefined, string][],
) {
  for (const [kind, id, field] of references) {
    if (id !== undefined) await requireExisting(config, kind, id, field);
  }
}

/**
 * Throws ConflictError when another entity of the kind has the same name.
 * NOTE: this reads before the write, so two concurrent creates with one name can both pass. The
 * config store guards names atomically only for the kinds it lists as unique (clusters, directors).
 */
export async function requireUniqueName(
  config: ConfigStore,
  kind: EntityKind,
  entity: { id: string; name: string },
) {
  const nameInUse = (await config.list(kind)).some(
    (other) => 'name' in other && other.name === entity.name && other.id !== entity.id,
  );
  if (nameInUse) throw new ConflictError(`a ${kind} named ${entity.name} exists already`);
}

/** Returns the clusters of the given directors. */
export async function clustersOfDirectors(
  config: ConfigStore,
  directorIds: Iterable<string>,
): Promise<string[]> {
  const requested = new Set(directorIds);
  if (requested.size === 0) return [];
  const directors = await config.list('director');
  return directors.filter((director) => requested.has(director.id)).flatMap((director) => director.clusters);
}

/** Returns the directors, backends and servers that refer to a probe, time profile or datacenter. */
export async function referencesTo(
  config: ConfigStore,
  field: 'probe' | 'timeProfile' | 'datacenter',
  id: string,
) {
  const [directors, backends, servers] = await Promise.all([
    config.list('director'),
    config.list('backend'),
    config.list('server'),
  ]);
  return {
    directors: field === 'datacenter' ? [] : directors.filter((director) => director[field] === id),
    backends: backends.filter((backend) => backend[field] === id),
    servers: field === 'datacenter' ? servers.filter((server) => server.datacenter === id) : [],
  };
}

/** Returns the clusters whose VCL a probe, time profile or datacenter reaches. */
export async function clustersReferencing(
  config: ConfigStore,
  field: 'probe' | 'timeProfile' | 'datacenter',
  id: string,
): Promise<string[]> {
  const references = await referencesTo(config, field, id);
  return [
    ...references.directors.flatMap((director) => director.clusters),
    ...(await clustersOfDirectors(
      config,
      references.backends.map((backend) => backend.director),
    )),
    ...references.servers.map((server) => server.cluster),
  ];
}

/** Throws ConflictError while anything refers to the entity; `users` maps a description to a count. */
export function requireUnused(kind: EntityKind, id: string, users: Record<string, number>) {
  const named = Object.entries(users).filter(([, count]) => count > 0);
  if (named.length === 0) return;
  const list = named.map(([label, count]) => `${count} ${label}`).join(' and ');
  throw new ConflictError(`${kind} ${id} is still used by ${list}; remove those references first`);
}

/**
 * Checks a cluster's template and variables: the template must exist, every placeholder needs a
 * variable, and each block with the variables filled in must stay inside its subroutine.
 */
export async function checkClusterTemplate(
  config: ConfigStore,
  cluster: Pick<Cluster, 'template' | 'variables'>,
) {
  if (cluster.template === undefined) return;
  const template = await config.get('vclTemplate', cluster.template);
  if (!template) {
    throw new ValidationError([
      { field: 'template', message: `vclTemplate ${cluster.template} does not exist` },
    ]);
  }

  const problems: FieldProblem[] = templateProblems(template, cluster.variables ?? {}).map((problem) =>
    problem.variable !== undefined
      ? {
          field: `variables.${problem.variable}`,
          message: `is undefined, and template ${template.id} uses it in block ${problem.block}`,
        }
      : {
          field: 'variables',
          message: `in template ${template.id} block ${problem.block}: ${problem.message}`,
        },
  );
  if (problems.length > 0) throw new ValidationError(problems);
}

/** Checks a template against the variables of every cluster that uses it. */
export async function checkTemplateUsers(config: ConfigStore, template: VclTemplate) {
  const clusters = (await config.list('cluster')).filter((cluster) => cluster.template === template.id);
  const problems: FieldProblem[] = clusters.flatMap((cluster) =>
    templateProblems(template, cluster.variables ?? {}).map((problem) => ({
      field: `blocks.${problem.block}`,
      message:
        problem.variable !== undefined
          ? `uses variable ${problem.variable}, which cluster ${cluster.name} (${cluster.id}) does not define`
          : `with the variables of cluster ${cluster.name} (${cluster.id}) filled in, ${problem.message}`,
    })),
  );
  if (problems.length > 0) throw new ValidationError(problems);
}
