/**
 * Errors of the daemon's API: a stable `code`, an HTTP status, a message that says what to do, and
 * optional details (config issues with their paths, the steps already applied). Every error a client
 * can cause is a 4xx; 5xx means a bug or a failure inside the daemon.
 *
 * Errors from the core (SvnicError, ConfigError) keep their code and get a status from STATUS.
 */
import { SvnicError } from '../hypervisor/errors.js';
import { ConfigError, type ConfigIssue } from '../config/issues.js';

export type ApiErrorCode =
  // request shape (Fastify + JSON Schema)
  | 'MALFORMED_JSON' | 'UNKNOWN_FIELD' | 'OUT_OF_RANGE' | 'BAD_TYPE' | 'BAD_FORMAT' | 'MISSING_FIELD' | 'BAD_REQUEST'
  | 'UNSUPPORTED_MEDIA_TYPE' | 'BODY_TOO_LARGE' | 'NOT_FOUND' | 'METHOD_NOT_ALLOWED'
  // authentication (TCP listener)
  | 'TOKEN_REQUIRED' | 'TOKEN_INVALID'
  // state
  | 'NO_SUCH_VIF' | 'NO_SUCH_GUEST' | 'NO_SUCH_DEVICE' | 'VIF_EXISTS' | 'DUPLICATE_MAC' | 'GENERATION_MISMATCH' | 'BUSY'
  | 'NEEDS_RESTART' | 'APPLY_FAILED' | 'NO_CONFIG_FILE' | 'NO_FDB' | 'VM_HAS_ONE_VIF' | 'QOS_OVERCOMMIT' | 'QOS_NO_CAPACITY'
  | 'INTERNAL';

export interface ApiErrorBody {
  code: string;
  message: string;
  issues?: ConfigIssue[];
  [k: string]: unknown;
}

export class ApiError extends Error {
  constructor(
    readonly code: ApiErrorCode,
    readonly status: number,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** HTTP status for the core's error codes (src/hypervisor/errors.ts). */
const STATUS: Record<string, number> = {
  NO_SUCH_VIF: 404, NO_SUCH_GUEST: 404, NO_SUCH_DEVICE: 404,
  DUPLICATE_MAC: 409, DEVICE_FULL: 409, VIF_ALREADY_GRANTED: 409, UPLINK_IN_USE: 409, VIF_EXISTS: 409,
  GENERATION_MISMATCH: 409, NEEDS_RESTART: 409,
  BAD_MAC: 400, BAD_MTU: 400, BAD_QUEUE_SIZE: 400, BAD_SEGMENT: 400, BAD_COALESCE: 400, BAD_OPTION: 400,
  CONFIG_INVALID: 400,
  GUEST_EXITED: 409, GUEST_FAILED: 422, DEVICE_STOPPED: 503, ENGINE_FAILED: 500,
  // QoS (issue 6): admission control refuses a guarantee the capacity cannot hold
  QOS_OVERCOMMIT: 409, QOS_NO_CAPACITY: 409, BAD_QOS: 400,
};

/** Turn anything thrown by a handler into a status and a JSON body. */
export function toErrorBody(e: unknown): { status: number; body: ApiErrorBody } {
  if (e instanceof ApiError) return { status: e.status, body: { ...e.details, code: e.code, message: e.message } };
  if (e instanceof ConfigError) return { status: 400, body: { code: e.code, message: e.message, issues: e.issues } };
  if (e instanceof SvnicError) return { status: STATUS[e.code] ?? 400, body: { code: e.code, message: e.message } };
  return { status: 500, body: { code: 'INTERNAL', message: `internal error: ${(e as Error)?.message ?? String(e)}; see the daemon's log` } };
}
