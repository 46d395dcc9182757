/**
 * TURN REST API credentials, the format coturn accepts with `--use-auth-secret
 * --static-auth-secret=<secret>` (draft-uberti-behave-turn-rest-00):
 *
 *   username = "<expiry unix seconds>:<id>"      (the ":<id>" part is optional)
 *   password = base64(HMAC-SHA1(secret, username))
 *
 * The server recomputes the password from the username, so it keeps no per-user state.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { CredentialError } from './codec/errors.js';

/** Issued credentials, ready to hand to an ICE agent as a TURN server entry. */
export interface TurnCredentials {
  readonly username: string;
  readonly password: string;
  /** Unix seconds after which the relay refuses the username. */
  readonly expiresAt: number;
  /** Seconds from issue to expiry. */
  readonly ttl: number;
}

/** Options for {@link issueTurnCredentials}. */
export interface IssueOptions {
  /** Shared secret (same as coturn's static-auth-secret). */
  readonly secret: string;
  /** Opaque user/session identity; must not contain the separator. Empty for none. */
  readonly id: string;
  /** Lifetime in seconds. Default 3600. */
  readonly ttlSeconds?: number;
  /** Current time in ms (injectable). Default Date.now(). */
  readonly nowMs?: number;
  /** Separator between expiry and id. Default ':' (coturn's `--rest-api-separator`). */
  readonly separator?: string;
}

/** Computes the password coturn would derive for `username`. */
export function restPassword(secret: string, username: string): string {
  return createHmac('sha1', secret).update(username, 'utf8').digest('base64');
}

/** Issues short-lived TURN REST credentials. Throws CredentialError on bad input. */
export function issueTurnCredentials(options: IssueOptions): TurnCredentials {
  const sep = options.separator ?? ':';
  if (options.secret.length === 0) throw new CredentialError('empty secret');
  if (options.id.includes(sep)) throw new CredentialError('id must not contain the separator');
  const ttl = options.ttlSeconds ?? 3600;
  if (!Number.isInteger(ttl) || ttl <= 0) throw new CredentialError('ttlSeconds must be a positive integer');
  const expiresAt = Math.floor((options.nowMs ?? Date.now()) / 1000) + ttl;
  const username = options.id === '' ? String(expiresAt) : `${expiresAt}${sep}${options.id}`;
  return { username, password: restPassword(options.secret, username), expiresAt, ttl };
}

/** Parsed REST username. */
export interface RestUsername {
  readonly expiresAt: number;
  /** The identity part ('' when absent); quotas are counted per identity. */
  readonly id: string;
}

/** Parses `<expiry>[<sep><id>]`; undefined when the username is not in REST form. */
export function parseRestUsername(username: string, separator = ':'): RestUsername | undefined {
  const i = username.indexOf(separator);
  const ts = i === -1 ? username : username.slice(0, i);
  if (!/^\d{1,12}$/.test(ts)) return undefined;
  return { expiresAt: Number(ts), id: i === -1 ? '' : username.slice(i + separator.length) };
}

/** Result of {@link verifyTurnCredentials}. */
export type VerifyResult =
  | { readonly ok: true; readonly expiresAt: number; readonly id: string; readonly password: string }
  | { readonly ok: false; readonly reason: 'malformed' | 'expired' | 'bad-password' };

/**
 * Verifies a REST username (and, when given, its password). Expired usernames are refused.
 * Without `password`, returns the expected password (the relay then checks MESSAGE-INTEGRITY).
 */
export function verifyTurnCredentials(
  secret: string,
  username: string,
  options: { password?: string; nowMs?: number; separator?: string } = {},
): VerifyResult {
  const parsed = parseRestUsername(username, options.separator);
  if (!parsed) return { ok: false, reason: 'malformed' };
  if (parsed.expiresAt * 1000 <= (options.nowMs ?? Date.now())) return { ok: false, reason: 'expired' };
  const expected = restPassword(secret, username);
  if (options.password !== undefined) {
    const a = Buffer.from(expected);
    const b = Buffer.from(options.password);
    if (a.length !== b.length || !timingSafeEqual(a, b)) return { ok: false, reason: 'bad-password' };
  }
  return { ok: true, expiresAt: parsed.expiresAt, id: parsed.id, password: expected };
}
