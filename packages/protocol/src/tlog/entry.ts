/**
 * Access-log entries (threat model S9): what a device appends to its log, one leaf per event.
 *
 * A leaf's data is the entry's canonical JSON (canonical.ts), at most MAX_LOG_ENTRY_BYTES. Keys
 * (viewers, owners, grant subjects) and session IDs appear only as {@link logKeyHash}es. The decoder
 * accepts only the canonical bytes of a valid entry, so one event has exactly one leaf hash.
 *
 * | `k`                | fields (besides `v: 1` and `t`, ms since the epoch)                            |
 * |--------------------|--------------------------------------------------------------------------------|
 * | `pair/attempt`     | `result` ok / bad-confirmation / locked / closed / error, `viewer`?, `code`?    |
 * | `acl/invite`       | `invite` (hash of the invite), `by`, `exp`                                      |
 * | `acl/request`      | `invite`, `subject` (the invitee's key), `result` pending / approved / denied / used / expired |
 * | `acl/grant`        | `subject`, `by`, `ver`, `role` owner / member / guest                           |
 * | `acl/change`       | `subject`, `by`, `ver`, `role`?                                                 |
 * | `acl/revoke`       | `subject`, `by`, `ver`                                                          |
 * | `live/start`       | `viewer`, `camera`, `sid`, `path` direct / relayed                              |
 * | `live/stop`        | `viewer`, `camera`, `sid`, `path`, `code`?                                      |
 * | `clip/sealed`      | `camera`, `clip`, `epoch`, `recipients` (sorted, unique, 1 to 32 key hashes)    |
 * | `talk/start`       | `viewer`, `camera`, `sid`                                                       |
 * | `talk/stop`        | `viewer`, `camera`, `sid`                                                       |
 * | `config/change`    | `field`, `by`?                                                                  |
 * | `update/installed` | `version`, `digest` (SHA-256 hex of the installed artifact)                    |
 * | `alert`            | `alert` impostor / possible-attack, `code`, `peer`?                             |
 */
import { z } from 'zod';
import { concat, constantTimeEqual, hex, utf8 } from '../bytes.js';
import { canonicalize, parseJson } from '../canonical.js';
import { label, sha256 } from '../crypto/primitives.js';
import { describeZod } from '../envelope.js';
import { ProtocolError } from '../errors.js';
import { CAMERA_NAME } from '../session.js';
import { leafHash } from './merkle.js';

/** Largest entry (its canonical JSON), in bytes. */
export const MAX_LOG_ENTRY_BYTES = 2048;
/** Most recipients in a `clip/sealed` entry. */
export const MAX_LOG_RECIPIENTS = 32;

/** A key or ID as the log names it: 32 hex digits (the first 16 bytes of a labelled SHA-256). */
const keyHash = z.string().regex(/^[0-9a-f]{32}$/);
const camera = z.string().regex(CAMERA_NAME);
/** An error code as an entry may carry it. */
const LOG_CODE = /^E_[A-Z0-9_]{1,62}$/;
const code = z.string().regex(LOG_CODE);
const int = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const path = z.enum(['direct', 'relayed']);
const base = { v: z.literal(1), t: int };
const kind = <K extends string, S extends z.ZodRawShape>(k: K, shape: S) =>
  z.object({ ...base, k: z.literal(k), ...shape }).strict();

/** The schema of every entry kind. */
export const logEntrySchema = z.discriminatedUnion('k', [
  kind('pair/attempt', {
    result: z.enum(['ok', 'bad-confirmation', 'locked', 'closed', 'error']),
    viewer: keyHash.optional(),
    code: code.optional(),
  }),
  kind('acl/invite', { invite: keyHash, by: keyHash, exp: int }),
  kind('acl/request', {
    invite: keyHash,
    subject: keyHash,
    result: z.enum(['pending', 'approved', 'denied', 'used', 'expired']),
  }),
  kind('acl/grant', { subject: keyHash, by: keyHash, ver: int, role: z.enum(['owner', 'member', 'guest']) }),
  kind('acl/change', {
    subject: keyHash,
    by: keyHash,
    ver: int,
    role: z.enum(['owner', 'member', 'guest']).optional(),
  }),
  kind('acl/revoke', { subject: keyHash, by: keyHash, ver: int }),
  kind('live/start', { viewer: keyHash, camera, sid: keyHash, path }),
  kind('live/stop', { viewer: keyHash, camera, sid: keyHash, path, code: code.optional() }),
  kind('clip/sealed', {
    camera,
    clip: keyHash,
    epoch: int,
    recipients: z
      .array(keyHash)
      .min(1)
      .max(MAX_LOG_RECIPIENTS)
      .refine((a) => a.every((x, i) => i === 0 || a[i - 1]! < x), 'recipients sorted and unique'),
  }),
  kind('talk/start', { viewer: keyHash, camera, sid: keyHash }),
  kind('talk/stop', { viewer: keyHash, camera, sid: keyHash }),
  kind('config/change', { field: z.string().regex(/^[a-z0-9_.-]{1,64}$/), by: keyHash.optional() }),
  kind('update/installed', {
    version: z.string().regex(/^[0-9A-Za-z.+-]{1,64}$/),
    digest: z.string().regex(/^[0-9a-f]{64}$/),
  }),
  kind('alert', { alert: z.enum(['impostor', 'possible-attack']), code, peer: keyHash.optional() }),
]);
/** An access-log entry. */
export type LogEntry = z.infer<typeof logEntrySchema>;
/** The entry kinds. */
export type LogEntryKind = LogEntry['k'];
/** Every entry kind. */
export const LOG_ENTRY_KINDS = logEntrySchema.options.map((o) => o.shape.k.value) as LogEntryKind[];

/**
 * The name the log gives a key or an ID (a viewer's public key, a session ID, an invite): the first
 * 16 bytes of SHA-256("hearth/v1/tlog/key" || bytes), in hex.
 */
export async function logKeyHash(bytes: Uint8Array): Promise<string> {
  return hex((await sha256(concat(utf8(label('tlog/key')), bytes))).subarray(0, 16));
}

/** Whether `c` is an error code a log entry may carry (`code` fields): the entry schema's own test. */
export function isLogCode(c: string | undefined): c is string {
  return c !== undefined && LOG_CODE.test(c);
}

/** The leaf data of `entry`: its canonical JSON. Raises ProtocolError E_LOG_ENTRY for an invalid entry. */
export function encodeLogEntry(entry: LogEntry): Uint8Array {
  const r = logEntrySchema.safeParse(entry);
  if (!r.success) throw new ProtocolError('E_LOG_ENTRY', `log entry: ${describeZod(r.error)}`);
  const bytes = utf8(canonicalize(r.data));
  if (bytes.length > MAX_LOG_ENTRY_BYTES)
    throw new ProtocolError('E_TOO_LARGE', `log entry larger than ${MAX_LOG_ENTRY_BYTES} bytes`);
  return bytes;
}

/**
 * Decode a leaf's data. Raises E_TOO_LARGE past MAX_LOG_ENTRY_BYTES, E_DECODE for bad JSON or UTF-8,
 * and E_LOG_ENTRY for an entry outside the schema or bytes that are not its canonical encoding.
 */
export function decodeLogEntry(bytes: unknown): LogEntry {
  if (!(bytes instanceof Uint8Array)) throw new ProtocolError('E_DECODE', 'log entry: expected bytes');
  const json = parseJson(bytes, MAX_LOG_ENTRY_BYTES);
  const r = logEntrySchema.safeParse(json);
  if (!r.success) throw new ProtocolError('E_LOG_ENTRY', `log entry: ${describeZod(r.error)}`);
  // Compare bytes, not decoded text: TextDecoder drops a leading BOM, which would let a second byte
  // string (and a second leaf hash) stand for the same entry.
  if (!constantTimeEqual(utf8(canonicalize(r.data)), bytes))
    throw new ProtocolError('E_LOG_ENTRY', 'log entry: not in canonical encoding');
  return r.data;
}

/** The leaf hash of an entry. */
export function logEntryHash(entry: LogEntry): Promise<Uint8Array> {
  return leafHash(encodeLogEntry(entry));
}
