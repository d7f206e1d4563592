// Typed errors that the API maps to problem+json responses (RFC 9457) by their statusCode. The
// title is the HTTP reason phrase, which RFC 9457 recommends for the default problem type `about:blank`.

export interface FieldProblem {
  /** JSON pointer-like path of the field, for example `clusters.0`. */
  field: string;
  message: string;
}

export class VaasError extends Error {
  readonly statusCode: number = 500;
  readonly title: string = 'Internal Server Error';

  constructor(message?: string) {
    super(message);
    // Logs and stack traces show the subclass, for example ClusterReloadError.
    this.name = new.target.name;
  }
}

export class BadRequestError extends VaasError {
  override readonly statusCode = 400;
  override readonly title = 'Bad Request';
}

export class ValidationError extends VaasError {
  override readonly statusCode = 422;
  override readonly title = 'Unprocessable Content';

  constructor(readonly problems: FieldProblem[]) {
    super(problems.map((problem) => `${problem.field}: ${problem.message}`).join('; '));
  }
}

export class NotFoundError extends VaasError {
  override readonly statusCode = 404;
  override readonly title = 'Not Found';
}

export class MethodNotAllowedError extends VaasError {
  override readonly statusCode = 405;
  override readonly title = 'Method Not Allowed';

  constructor(readonly allowed: string[]) {
    super(`allowed methods: ${allowed.join(', ')}`);
  }
}

export class ConflictError extends VaasError {
  override readonly statusCode = 409;
  override readonly title = 'Conflict';

  /** @param field The field whose value conflicts, when one does. */
  constructor(
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}

/** Another request updated the entity between this request's read and its write. */
export class ConcurrentUpdateError extends ConflictError {}

export class PayloadTooLargeError extends VaasError {
  override readonly statusCode = 413;
  override readonly title = 'Content Too Large';
}

export class UnsupportedMediaTypeError extends VaasError {
  override readonly statusCode = 415;
  override readonly title = 'Unsupported Media Type';
}

/** A cluster reload failed; the change stays saved. */
export class ReloadFailedError extends VaasError {
  override readonly statusCode = 502;
  override readonly title = 'Bad Gateway';

  constructor(
    message: string,
    readonly taskId: string,
    /** The saved resource, so the caller learns its id even though the reload failed. */
    readonly resource?: object,
  ) {
    super(message);
  }
}

/** Varnish rejected a VCL: the compiler's message as varnishd printed it. */
export class VclCompileError extends VaasError {
  override readonly statusCode = 422;
  override readonly title = 'Unprocessable Content';
}

/** An agent or varnishd could not be reached, or returned an unexpected status. */
export class VarnishUnavailableError extends VaasError {
  override readonly statusCode = 502;
  override readonly title = 'Bad Gateway';
}

/** The VCL compiler's message and the location it names with `('<vcl.inline>' Line L Pos P)`. */
export interface CompilerReport {
  /** The compiler's message in one line, for example `Regexp compilation error: lookbehind assertion is not fixed length`. */
  message: string;
  /** 1-based line of the rendered VCL, when the output names one. */
  line?: number;
  /** 1-based column in that line, when the output names one. */
  position?: number;
  /** The VCL line that the compiler quoted. */
  source?: string;
  /** The compiler's whole output. */
  output: string;
}

/** A change was rejected before saving because the VCL rendered from it does not compile. */
export class ChangeDoesNotCompileError extends VaasError {
  override readonly statusCode = 422;
  override readonly title = 'Unprocessable Content';

  constructor(
    message: string,
    readonly compiler: CompilerReport & { cluster: string; server: string },
  ) {
    super(message);
  }
}

/** A dependency such as every Varnish server of a cluster is unreachable now; retrying later may succeed. */
export class ServiceUnavailableError extends VaasError {
  override readonly statusCode = 503;
  override readonly title = 'Service Unavailable';
}

/** A purge failed on at least one server; `results` reports every server. */
export class PurgeFailedError extends VaasError {
  override readonly statusCode = 502;
  override readonly title = 'Bad Gateway';

  constructor(
    message: string,
    readonly results: object[],
  ) {
    super(message);
  }
}

/** A change of several writes stopped after some of them; the saved ones stay and get their reload. */
export class ChangePartlySavedError extends VaasError {}
