// Renders vcl_recv: the routes in the order they are tried, then each director's routeExpression,
// then a 404 for a request that matches nothing.

import { block } from './vcl-backends.js';
import { conditionUsesCookies, renderCondition } from './vcl-condition.js';
import type { DirectorPlan, VclPlan } from './vcl-plan.js';
import { requireCookieName } from './vcl-values.js';

const INDENT = '    ';
const NO_ROUTE = 'return (synth(404, "No route"));';
const NO_BACKEND = 'return (synth(503, "No backend available for this route"));';
const NO_CANARY_BACKEND = 'return (synth(503, "No canary backend for this route"));';

interface Branch {
  condition: string;
  action: string[];
}

export function renderRecv(plan: VclPlan): string {
  const branches: Branch[] = [
    ...plan.routes.map(({ route, target }) => ({
      condition: renderCondition(route.condition, `route ${route.id}`),
      action: routeAction(target),
    })),
    ...plan.directors.map((target) => ({
      condition: `${target.director.router === 'host' ? 'req.http.host' : 'req.url'} ~ "${target.director.routeExpression}"`,
      action: routeAction(target),
    })),
  ];

  const lines: string[] = [];
  if (usesCookies(plan)) lines.push('cookie.parse(req.http.cookie);');
  if (branches.length === 0) {
    lines.push(NO_ROUTE);
    return block('sub vcl_recv', lines);
  }

  branches.forEach((branch, index) => {
    lines.push(`${index === 0 ? 'if' : '} elsif'} (${branch.condition}) {`, ...indent(branch.action));
  });
  lines.push('} else {', ...indent([NO_ROUTE]), '}');
  return block('sub vcl_recv', lines);
}

/** Returns true when a route or a director reads a cookie, so vcl_recv parses the Cookie header first. */
function usesCookies(plan: VclPlan): boolean {
  return (
    plan.routes.some(({ route }) => conditionUsesCookies(route.condition)) ||
    plan.directors.some((target) => target.backends.length > 0 && hashesByCookie(target))
  );
}

function hashesByCookie({ director }: DirectorPlan): boolean {
  return director.mode === 'hash' && director.hashBy === 'cookie';
}

/** Returns the statements that send a request to a director, or the synthetic error when it has no backend. */
function routeAction(target: DirectorPlan): string[] {
  if (target.emptyReason === 'canary') return [NO_CANARY_BACKEND];
  if (target.backends.length === 0) return [NO_BACKEND];
  if (target.director.mode !== 'hash') return [`set req.backend_hint = ${target.identifier}.backend();`];
  if (!hashesByCookie(target)) return pickByKey(target, 'req.url');

  const cookie = requireCookieName(target.director.hashCookie, `director ${target.director.id}: hashCookie`);
  return [
    `if (cookie.isset("${cookie}")) {`,
    ...indent(pickByKey(target, `cookie.get("${cookie}")`)),
    '} else {',
    ...indent(pickByKey(target, 'req.url')),
    '}',
  ];
}

/**
 * Picks a backend of a hash director by key. The hash director resolves its backend at once, so a
 * datacenter split cannot sit behind a fallback director: the remote group is asked only when the
 * local pick is not healthy.
 */
function pickByKey(target: DirectorPlan, key: string): string[] {
  const [first, ...others] = target.groups;
  if (!first) return [NO_BACKEND];
  const lines = [`set req.backend_hint = ${first.identifier}.backend(${key});`];
  for (const group of others) {
    lines.push(
      'if (!std.healthy(req.backend_hint)) {',
      ...indent([`set req.backend_hint = ${group.identifier}.backend(${key});`]),
      '}',
    );
  }
  return lines;
}

function indent(lines: string[]): string[] {
  return lines.map((line) => `${INDENT}${line}`);
}
