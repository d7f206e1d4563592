import type { z } from 'zod';
import { BadRequestError, type FieldProblem, ValidationError } from '../domain/errors.js';

/** Parses a request body with a schema. Throws ValidationError naming every invalid field. */
export function parseInput<S extends z.ZodType>(schema: S, body: unknown): z.infer<S> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new BadRequestError('the request body must be a JSON object');
  }

  const result = schema.safeParse(body);
  if (result.success) return result.data;
  throw new ValidationError(result.error.issues.flatMap(toFieldProblems));
}

function toFieldProblems(issue: z.core.$ZodIssue): FieldProblem[] {
  const prefix = issue.path.map(String).join('.');
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((key) => ({
      field: prefix ? `${prefix}.${key}` : key,
      message: 'is not a writable field of this resource',
    }));
  }
  return [{ field: prefix || '(body)', message: issue.message }];
}
