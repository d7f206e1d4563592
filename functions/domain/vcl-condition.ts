// Route conditions: a small structured form that the renderer turns into a VCL expression, so that
// no route carries raw VCL. Every value is written as a VCL string and checked for that on save and
// again at render time.
import { z } from 'zod';
import {
  cookieName,
  headerName,
  isCompilableRegex,
  requireCookieName,
  requireHeaderName,
  requireVclString,
  VclRenderError,
  vclStringValue,
} from './vcl-values.js';

export const conditionFields = ['url', 'host', 'method', 'header', 'cookie'] as const;
export const conditionOperators = ['matches', 'not_matches', 'equals'] as const;

const MAX_CLAUSES = 16;

const VCL_OPERATORS = { matches: '~', not_matches: '!~', equals: '==' } as const;

export const conditionClause = z
  .strictObject({
    field: z.enum(conditionFields),
    /** Header or cookie name; only for the fields `header` and `cookie`. */
    name: z.string().optional(),
    operator: z.enum(conditionOperators),
    value: vclStringValue(512).min(1),
  })
  .superRefine((clause, context) => {
    const named = clause.field === 'header' || clause.field === 'cookie';
    if (named && clause.name === undefined) {
      context.addIssue({ code: 'custom', path: ['name'], message: `is required for field ${clause.field}` });
    }
    if (!named && clause.name !== undefined) {
      context.addIssue({
        code: 'custom',
        path: ['name'],
        message: 'applies only to the fields header and cookie',
      });
    }
    if (named && clause.name !== undefined) {
      const nameSchema = clause.field === 'header' ? headerName : cookieName;
      const parsed = nameSchema.safeParse(clause.name);
      if (!parsed.success) {
        context.addIssue({
          code: 'custom',
          path: ['name'],
          message: parsed.error.issues[0]?.message ?? 'invalid',
        });
      }
    }
    if (clause.operator !== 'equals' && !isCompilableRegex(clause.value)) {
      context.addIssue({ code: 'custom', path: ['value'], message: 'must be a valid regular expression' });
    }
  });

/** Clauses joined by AND (`all`) or by OR (`any`); exactly one of the two is given. */
export const routeCondition = z
  .strictObject({
    all: z.array(conditionClause).min(1).max(MAX_CLAUSES).optional(),
    any: z.array(conditionClause).min(1).max(MAX_CLAUSES).optional(),
  })
  .superRefine((condition, context) => {
    if ((condition.all === undefined) === (condition.any === undefined)) {
      context.addIssue({ code: 'custom', path: ['all'], message: 'give exactly one of all and any' });
    }
  });

export type ConditionClause = z.infer<typeof conditionClause>;
export type RouteCondition = z.infer<typeof routeCondition>;

/** Renders a condition as a VCL boolean expression. Throws VclRenderError for a value that must not reach VCL. */
export function renderCondition(condition: RouteCondition, label: string): string {
  const clauses = conditionClauses(condition, label);
  const joiner = condition.all !== undefined ? ' && ' : ' || ';
  return clauses.map((clause, index) => renderClause(clause, `${label} clause ${index}`)).join(joiner);
}

/** Returns true when the condition reads a cookie, so the VCL must parse the Cookie header first. */
export function conditionUsesCookies(condition: RouteCondition): boolean {
  return (condition.all ?? condition.any ?? []).some((clause) => clause.field === 'cookie');
}

function conditionClauses(condition: RouteCondition, label: string): ConditionClause[] {
  const clauses = condition?.all ?? condition?.any;
  if (!Array.isArray(clauses) || clauses.length === 0 || clauses.length > MAX_CLAUSES) {
    throw new VclRenderError(`${label} must have from 1 to ${MAX_CLAUSES} clauses in all or any`);
  }
  return clauses;
}

function renderClause(clause: ConditionClause, label: string): string {
  if (!Object.hasOwn(VCL_OPERATORS, clause.operator)) {
    throw new VclRenderError(`${label} has an unknown operator`);
  }
  const value = requireVclString(clause.value, `${label} value`);
  if (value === '') {
    throw new VclRenderError(`${label} has an empty value`);
  }
  return `${conditionSubject(clause, label)} ${VCL_OPERATORS[clause.operator]} "${value}"`;
}

function conditionSubject(clause: ConditionClause, label: string): string {
  switch (clause.field) {
    case 'url':
      return 'req.url';
    case 'host':
      return 'req.http.host';
    case 'method':
      return 'req.method';
    case 'header':
      return `req.http.${requireHeaderName(clause.name, `${label} header name`)}`;
    case 'cookie':
      return `cookie.get("${requireCookieName(clause.name, `${label} cookie name`)}")`;
    default:
      throw new VclRenderError(`${label} has an unknown field`);
  }
}
