// Values that reach VCL, and the checks that keep them from changing its structure.
//
// VCL strings have no escapes, so a double quote or a line break in a value would end the string
// early and let the rest run as VCL. The API's schemas reject such values on save, and the renderer
// checks every value again before it writes it, in case something else wrote the store.
import { z } from 'zod';
import { VaasError } from './errors.js';

/** The configuration contains a value that must not reach VCL, which model validation should have rejected. */
export class VclRenderError extends VaasError {
  override readonly statusCode = 500;
  override readonly title = 'Internal Server Error';
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: the pattern exists to reject control characters.
export const NO_CONTROL_CHARS = /^[^\u0000-\u001f\u007f]*$/;
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this rejects.
const UNSAFE_IN_VCL_STRING = /["\u0000-\u001f\u007f]/;

/**
 * Generated identifiers stay within 64 characters. varnishd 7.1 compiled a 100-character backend
 * name in a test with `varnishd -C`, so the limit is a margin for tools that read the names.
 */
const VCL_IDENTIFIER = /^[A-Za-z][A-Za-z0-9_]{0,63}$/;
const HEADER_NAME = /^[A-Za-z][A-Za-z0-9_-]{0,63}$/;
const COOKIE_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$/;

/** A resource name, which may become part of a VCL identifier. */
export const resourceName = z
  .string()
  .regex(
    /^[A-Za-z][A-Za-z0-9_-]{0,47}$/,
    'must start with a letter and contain only letters, digits, _ and -, at most 48 characters',
  );

/** Returns the schema of a value written between double quotes in VCL: no double quote and no control character. */
export function vclStringValue(maxLength: number) {
  return z
    .string()
    .max(maxLength)
    .regex(NO_CONTROL_CHARS, 'must not contain control characters')
    .regex(/^[^"]*$/, 'must not contain double quotes');
}

/** A regular expression written as a VCL string. */
export const vclRegex = vclStringValue(512)
  .min(1)
  .refine(isCompilableRegex, 'must be a valid regular expression');

/**
 * A header name that VCL accepts after `req.http.`. varnishd 7.1 rejects the RFC 9110 token
 * characters other than letters, digits, `-` and `_` there, and a leading digit.
 */
export const headerName = z
  .string()
  .regex(
    HEADER_NAME,
    'must start with a letter and contain only letters, digits, - and _, at most 64 characters',
  );

/** A cookie name: an RFC 9110 token, which is what RFC 6265 allows. */
export const cookieName = z
  .string()
  .regex(
    COOKIE_NAME,
    "must be an RFC 9110 token: letters, digits and !#$%&'*+-.^_`|~, at most 64 characters",
  );

/** Returns the value when it can sit between double quotes in VCL; throws VclRenderError otherwise. */
export function requireVclString(value: unknown, label: string): string {
  if (typeof value !== 'string' || UNSAFE_IN_VCL_STRING.test(value)) {
    throw new VclRenderError(`${label} must be a string without double quotes or control characters`);
  }
  return value;
}

/** Returns the value when it is a header name that VCL accepts; throws VclRenderError otherwise. */
export function requireHeaderName(value: unknown, label: string): string {
  if (typeof value !== 'string' || !HEADER_NAME.test(value)) {
    throw new VclRenderError(`${label} is not a header name that VCL accepts`);
  }
  return value;
}

/** Returns the value when it is a cookie name; throws VclRenderError otherwise. */
export function requireCookieName(value: unknown, label: string): string {
  if (typeof value !== 'string' || !COOKIE_NAME.test(value)) {
    throw new VclRenderError(`${label} is not a cookie name`);
  }
  return value;
}

/** Returns the identifier when it is a VCL symbol of at most 64 characters; throws VclRenderError otherwise. */
export function requireIdentifier(identifier: string): string {
  if (!VCL_IDENTIFIER.test(identifier)) {
    throw new VclRenderError(`generated identifier ${JSON.stringify(identifier)} is not a valid VCL name`);
  }
  return identifier;
}

/** Returns an integer within the range; throws VclRenderError otherwise. */
export function requireInteger(value: unknown, min: number, max: number, label: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new VclRenderError(`${label} must be an integer from ${min} to ${max}`);
  }
  return value;
}

/** Formats seconds as a VCL duration in whole milliseconds, for example `5s` or `1500ms`. */
export function vclDuration(seconds: unknown, label: string): string {
  if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds <= 0 || seconds > 86_400) {
    throw new VclRenderError(`${label} must be a number of seconds above 0 and at most 86400`);
  }
  const milliseconds = Math.max(1, Math.round(seconds * 1000));
  return milliseconds % 1000 === 0 ? `${milliseconds / 1000}s` : `${milliseconds}ms`;
}

/**
 * Checks a regular expression with JavaScript's engine after dropping PCRE inline flags such as
 * `(?i)`, which JavaScript lacks. NOTE: varnishd compiles with PCRE2, which rejects a few
 * patterns that JavaScript accepts (a lookbehind of variable length, say). The compile check
 * before a save catches those when a server of the cluster is reachable.
 */
export function isCompilableRegex(value: string): boolean {
  try {
    new RegExp(value.replace(/\(\?[imsxn-]+\)/g, ''));
    return true;
  } catch {
    return false;
  }
}

/** Compares by UTF-16 code units, so the order does not depend on the locale. */
export function compareStrings(a: string, b: string): number {
  if (a === b) {
    return 0;
  }
  return a < b ? -1 : 1;
}
