/**
 * Bearer tokens for the TCP listener: every mutating call (any method but GET and HEAD) needs
 * `Authorization: Bearer <token>`. The check compares SHA-256 digests with timingSafeEqual, so its
 * time depends neither on where a wrong token differs nor on its length.
 * (The unix socket needs no token: its mode, 0600, is the access control.)
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { ApiError } from './errors.js';

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

export const newToken = (): string => randomBytes(32).toString('base64url');

export function tokenChecker(token: string): (authorization: string | undefined) => void {
  if (token.length < 16) throw new Error('the API token must be at least 16 characters');
  const want = digest(token);
  return (authorization) => {
    const m = authorization === undefined ? null : /^Bearer[ ]+(\S+)\s*$/i.exec(authorization);
    if (!m) throw new ApiError('TOKEN_REQUIRED', 401, 'this call changes the device: send `Authorization: Bearer <token>` (the token file is given by svnicd --token-file)');
    if (!timingSafeEqual(digest(m[1]!), want)) throw new ApiError('TOKEN_INVALID', 401, 'the bearer token is wrong; read it again from the token file');
  };
}

export const isMutating = (method: string): boolean => method !== 'GET' && method !== 'HEAD';
