// Purge targets and the `ban` command that removes them. The API and the agent both validate with
// these functions, so no value reaches the ban expression unchecked.
//
// varnishd 7.1 splits a ban's arguments at whitespace even inside double quotes, and it treats a
// backslash as an escape. So values contain neither, nor a double quote, which would end the value.
import { type FieldProblem, ValidationError } from './errors.js';

/** A URL path with an optional query, and exact header values that the cached request had. */
export interface PurgeTarget {
  /** Origin-form request target, for example `/products/7?view=full`. */
  path: string;
  /** Header names in lower case; each value must equal the request's header. */
  headers: Record<string, string>;
}

const MAX_URL_LENGTH = 2048;
const MAX_HEADERS = 16;
/** RFC 3986 characters of a path and query: unreserved, sub-delims, `:`, `@`, `/`, `?` and `%`. */
const PATH = /^\/[A-Za-z0-9\-._~!$&'()*+,;=:@%/?]*$/;
const HEADER_NAME = /^[A-Za-z0-9][A-Za-z0-9-]{0,63}$/;
/** Visible ASCII except `"` and `\`. */
const HEADER_VALUE = /^[!#-[\]-~]{1,1024}$/;

/** Validates a purge request's `url` and `headers`; an absolute http(s) URL adds its host as the `host` header. */
export function parsePurgeTarget(url: unknown, headers: unknown): PurgeTarget {
  const problems: FieldProblem[] = [];
  const target: PurgeTarget = { path: '', headers: {} };

  if (headers !== undefined) {
    if (typeof headers !== 'object' || headers === null || Array.isArray(headers)) {
      problems.push({ field: 'headers', message: 'must be an object of header names and values' });
    } else {
      addHeaders(target, headers as Record<string, unknown>, problems);
    }
  }
  addUrl(target, url, problems);

  if (problems.length > 0) throw new ValidationError(problems);
  return target;
}

/** Returns the `ban` command for a target, after checking it again. */
export function banCommand(target: PurgeTarget): string {
  const checked = parsePurgeTarget(target.path, target.headers);
  const conditions = [`req.url == "${checked.path}"`];
  for (const [name, value] of Object.entries(checked.headers).sort(([a], [b]) => (a < b ? -1 : 1))) {
    conditions.push(`req.http.${name} == "${value}"`);
  }
  return `ban ${conditions.join(' && ')}`;
}

function addHeaders(target: PurgeTarget, headers: Record<string, unknown>, problems: FieldProblem[]) {
  const entries = Object.entries(headers);
  if (entries.length > MAX_HEADERS) {
    problems.push({ field: 'headers', message: `must have at most ${MAX_HEADERS} headers` });
    return;
  }

  for (const [name, value] of entries) {
    const field = `headers.${name}`;
    if (!HEADER_NAME.test(name)) {
      problems.push({
        field,
        message: 'header names contain only letters, digits and -, at most 64 characters',
      });
    } else if (typeof value !== 'string' || !HEADER_VALUE.test(value)) {
      problems.push({
        field,
        message: 'must be 1 to 1024 visible ASCII characters without spaces, double quotes or backslashes',
      });
    } else if (Object.hasOwn(target.headers, name.toLowerCase())) {
      problems.push({ field, message: 'repeats a header name' });
    } else {
      target.headers[name.toLowerCase()] = value;
    }
  }
}

function addUrl(target: PurgeTarget, url: unknown, problems: FieldProblem[]) {
  if (typeof url !== 'string' || url === '' || url.length > MAX_URL_LENGTH) {
    problems.push({ field: 'url', message: `must be a string of 1 to ${MAX_URL_LENGTH} characters` });
    return;
  }

  let path = url;
  if (/^https?:\/\//i.test(url)) {
    const parsed = URL.canParse(url) ? new URL(url) : undefined;
    if (!parsed || parsed.username || parsed.password || parsed.hash) {
      problems.push({
        field: 'url',
        message: 'must be an http(s) URL without credentials or fragment, or a path',
      });
      return;
    }
    path = `${parsed.pathname}${parsed.search}`;
    const host = parsed.host;
    if (!HEADER_VALUE.test(host)) {
      problems.push({ field: 'url', message: 'has a host with characters that a ban cannot match' });
      return;
    }
    const hostHeader = target.headers.host;
    if (hostHeader !== undefined && hostHeader.toLowerCase() !== host) {
      problems.push({ field: 'headers.host', message: `must match the URL's host ${host} or be left out` });
      return;
    }
    target.headers.host = hostHeader ?? host;
  }

  if (!PATH.test(path)) {
    problems.push({
      field: 'url',
      message:
        'must be a path that starts with / and contains only URL characters (RFC 3986), or an http(s) URL',
    });
    return;
  }
  target.path = path;
}
