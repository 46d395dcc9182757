/**
 * The server blob store's wire formats (docs/protocol.md, "Blob store"): the **blob ticket**, the
 * device's signed capability for one stored blob, and the **request token** that signs every HTTP
 * request to the store.
 *
 * Ticket (purpose `blob/ticket`, signed by the device key `dk`):
 * ```
 * signed = "hearth/v1/blob/ticket\n" ‖ canonicalJSON({v:1, dev, dk, id, kind, hr, size, sha, readers, owners, seq})
 * text   = canonicalJSON({…the same fields…, sig})          sig = b64u(Ed25519_dk(signed))
 * ```
 * `dev` must be derived from `dk`; `readers` (may read) and `owners` (may delete) are user keys;
 * `seq` grows each time the device re-issues the ticket (a revocation), and the store refuses a
 * ticket whose `seq` is not above the one it holds.
 *
 * Request token (purpose `blob/request`), in `authorization: Hearth <token>`:
 * ```
 * json  = canonicalJSON({k, m, p, ts, nc, bh})
 * token = b64u(json) "." b64u(Ed25519_k("hearth/v1/blob/request\n" ‖ json))
 * ```
 * `k` the signer (`hdk_…` or `huk_…`), `m` the method, `p` the path with its query, `ts` ms since
 * the epoch, `nc` 16 random bytes, `bh` the SHA-256 of the body (of zero bytes when empty).
 *
 * Decoders raise ProtocolError only; verifiers raise ProtocolError or VerificationError.
 */
import { z } from 'zod';
import { b64u, concat, constantTimeEqual, fromB64u, fromUtf8, utf8 } from './bytes.js';
import { canonicalBytes, canonicalize, parseJson } from './canonical.js';
import type { CryptoEnv } from './crypto/env.js';
import { ed25519Verify, label, type Signer, sha256 } from './crypto/primitives.js';
import { describeZod, type SignerKind, signerKeyText } from './envelope.js';
import {
  ConfigError,
  errorFromCode,
  type HearthError,
  isErrorCode,
  ProtocolError,
  VerificationError,
} from './errors.js';
import {
  type DeviceId,
  type DeviceKeyText,
  decodeId,
  deviceIdFromKey,
  encodeId,
  type UserKeyText,
} from './ids.js';

/** Purpose label of a ticket's signature. */
export const BLOB_TICKET_PURPOSE = 'blob/ticket';
/** Purpose label of a request token's signature. */
export const BLOB_REQUEST_PURPOSE = 'blob/request';
/** Kinds of stored blob (the v2 sealed-blob kinds). */
export const STORED_BLOB_KINDS = ['clip', 'snapshot', 'event'] as const;
export type StoredBlobKind = (typeof STORED_BLOB_KINDS)[number];
/** Most user keys in a ticket's `readers`. */
export const MAX_TICKET_READERS = 64;
/** Most user keys in a ticket's `owners`. */
export const MAX_TICKET_OWNERS = 16;
/** Largest encoded ticket (canonical JSON text). */
export const MAX_BLOB_TICKET_BYTES = 8 * 1024;
/** Largest request token (its text). */
export const MAX_BLOB_REQUEST_TOKEN_CHARS = 1024;
/** Default accepted clock difference of a request token, either way (ms). */
export const BLOB_REQUEST_MAX_SKEW_MS = 5 * 60_000;
/** Largest accepted hour (`hr`): year 9999 or so. */
export const MAX_BLOB_HOUR = 70_000_000;
/** Largest request path with query (characters). */
export const MAX_BLOB_REQUEST_PATH = 512;

const B64U = /^[A-Za-z0-9_-]*$/;
const b64 = (chars: number) => z.string().length(chars).regex(B64U);
const int = (min: number, max: number) => z.number().int().min(min).max(max);
const keyText = z.string().min(4).max(80);

/** True when `s` is a blob ID: the canonical b64u of 16 bytes (exactly 22 characters). */
export function isBlobId(s: unknown): s is string {
  if (typeof s !== 'string' || s.length !== 22 || !B64U.test(s)) return false;
  try {
    return b64u(fromB64u(s, 16)) === s;
  } catch {
    return false;
  }
}

/** A fresh random blob ID. */
export function newBlobId(
  random: (n: number) => Uint8Array = (n) => crypto.getRandomValues(new Uint8Array(n)),
): string {
  return b64u(random(16));
}

/** The coarse hour of a time (ms since the epoch): what `hr` holds. */
export function blobHour(ms: number): number {
  return Math.floor(ms / 3_600_000);
}

// ---------------------------------------------------------------- ticket

/** The signed fields of a ticket. */
export interface BlobTicketCore {
  v: 1;
  dev: DeviceId;
  dk: DeviceKeyText;
  id: string;
  kind: StoredBlobKind;
  hr: number;
  size: number;
  /** b64u of the SHA-256 of the sealed blob's bytes. */
  sha: string;
  readers: UserKeyText[];
  owners: UserKeyText[];
  seq: number;
}
/** A ticket with its signature (b64u, 64 bytes). */
export interface BlobTicket extends BlobTicketCore {
  sig: string;
}

const uniqueKeys = (max: number) =>
  z
    .array(keyText)
    .max(max)
    .refine((a) => new Set(a).size === a.length, 'duplicate keys');

const ticketSchema = z
  .object({
    v: z.literal(1),
    dev: keyText,
    dk: keyText,
    id: b64(22),
    kind: z.enum(STORED_BLOB_KINDS),
    hr: int(0, MAX_BLOB_HOUR),
    size: int(0, Number.MAX_SAFE_INTEGER),
    sha: b64(43),
    readers: uniqueKeys(MAX_TICKET_READERS),
    owners: uniqueKeys(MAX_TICKET_OWNERS),
    seq: int(0, Number.MAX_SAFE_INTEGER),
    sig: b64(86),
  })
  .strict();

function ticketCore(t: BlobTicketCore): BlobTicketCore {
  const { v, dev, dk, id, kind, hr, size, sha, readers, owners, seq } = t;
  return { v, dev, dk, id, kind, hr, size, sha, readers, owners, seq };
}

/** The bytes a ticket's signature covers. */
export function blobTicketSignedBytes(t: BlobTicketCore): Uint8Array {
  return concat(utf8(`${label(BLOB_TICKET_PURPOSE)}\n`), canonicalBytes(ticketCore(t)));
}

/** What the device puts in a ticket ({@link signBlobTicket} fills `v`, `dev` and `dk`). */
export interface BlobTicketInput {
  id: string;
  kind: StoredBlobKind;
  hr: number;
  size: number;
  /** 32-byte SHA-256 of the sealed blob. */
  sha256: Uint8Array;
  readers: readonly string[];
  owners: readonly string[];
  seq: number;
}

/** Sign a ticket with the device's signer. RangeError for input outside the schema (the caller's bug). */
export async function signBlobTicket(device: Signer, t: BlobTicketInput): Promise<BlobTicket> {
  if (t.sha256.length !== 32) throw new RangeError('sha256 must be 32 bytes');
  const core: BlobTicketCore = {
    v: 1,
    dev: deviceIdFromKey(device.publicKey),
    dk: encodeId('deviceKey', device.publicKey),
    id: t.id,
    kind: t.kind,
    hr: t.hr,
    size: t.size,
    sha: b64u(t.sha256),
    readers: [...t.readers] as UserKeyText[],
    owners: [...t.owners] as UserKeyText[],
    seq: t.seq,
  };
  const checked = ticketSchema.safeParse({ ...core, sig: 'A'.repeat(86) });
  if (!checked.success || !isBlobId(t.id))
    throw new RangeError(`blob ticket: ${checked.success ? 'id' : describeZod(checked.error)}`);
  for (const k of [...core.readers, ...core.owners]) decodeIdOrRange(k);
  const sig = b64u(await device.sign(blobTicketSignedBytes(core)));
  return { ...core, sig };
}

function decodeIdOrRange(k: string): void {
  try {
    decodeId('userKey', k);
  } catch {
    throw new RangeError('blob ticket: readers and owners must be user keys');
  }
}

/** Canonical JSON text of a ticket. */
export function encodeBlobTicket(t: BlobTicket): string {
  return canonicalize({ ...ticketCore(t), sig: t.sig });
}

/** A ticket as the `hearth-ticket` header carries it: b64u of its canonical JSON. */
export function encodeBlobTicketHeader(t: BlobTicket): string {
  return b64u(utf8(encodeBlobTicket(t)));
}

/**
 * Decode a ticket (no signature check): size limit, strict schema, key texts, canonical ID, and,
 * for text or bytes, the canonical encoding (one text per ticket, so what is stored is what was
 * signed). E_TOO_LARGE, E_DECODE, E_SCHEMA or E_BAD_ID.
 */
export function decodeBlobTicket(input: string | Uint8Array | unknown): BlobTicket {
  const isText = typeof input === 'string' || input instanceof Uint8Array;
  const raw = isText ? parseJson(input, MAX_BLOB_TICKET_BYTES) : input;
  const r = ticketSchema.safeParse(raw);
  if (!r.success) throw new ProtocolError('E_SCHEMA', `blob ticket: ${describeZod(r.error)}`);
  const t = r.data;
  if (!isBlobId(t.id)) throw new ProtocolError('E_SCHEMA', 'blob ticket: id is not a canonical 16-byte b64u');
  fromB64u(t.sha, 32);
  fromB64u(t.sig, 64);
  decodeId('deviceId', t.dev);
  decodeId('deviceKey', t.dk);
  for (const k of t.readers) decodeId('userKey', k);
  for (const k of t.owners) decodeId('userKey', k);
  const ticket = t as BlobTicket;
  if (isText) {
    const text = typeof input === 'string' ? input : fromUtf8(input);
    if (encodeBlobTicket(ticket) !== text)
      throw new ProtocolError('E_SCHEMA', 'blob ticket: not canonical JSON');
  } else if (encodeBlobTicket(ticket).length > MAX_BLOB_TICKET_BYTES)
    throw new ProtocolError('E_TOO_LARGE', `blob ticket larger than ${MAX_BLOB_TICKET_BYTES} bytes`);
  return ticket;
}

/** Decode the `hearth-ticket` header (b64u of the canonical JSON). Same errors as {@link decodeBlobTicket}. */
export function decodeBlobTicketHeader(value: unknown): BlobTicket {
  if (typeof value !== 'string') throw new ProtocolError('E_DECODE', 'blob ticket header: not a string');
  if (value.length > Math.ceil((MAX_BLOB_TICKET_BYTES * 4) / 3))
    throw new ProtocolError('E_TOO_LARGE', 'blob ticket header too long');
  const bytes = fromB64u(value, MAX_BLOB_TICKET_BYTES);
  if (b64u(bytes) !== value) throw new ProtocolError('E_DECODE', 'blob ticket header: not canonical b64u');
  return decodeBlobTicket(bytes);
}

/**
 * Verify a decoded ticket: `dev` derived from `dk` (E_BAD_BINDING), the signature under `dk`
 * (E_BAD_SIGNATURE); when `expectedDev` is given, the ticket must be for that device (E_BAD_BINDING).
 */
export async function verifyBlobTicket(t: BlobTicket, expectedDev?: string): Promise<void> {
  const dk = decodeId('deviceKey', t.dk);
  if (deviceIdFromKey(dk) !== t.dev)
    throw new VerificationError('E_BAD_BINDING', 'blob ticket: dev is not derived from dk');
  if (expectedDev !== undefined && expectedDev !== t.dev)
    throw new VerificationError('E_BAD_BINDING', 'blob ticket: for another device');
  if (!(await ed25519Verify(dk, blobTicketSignedBytes(t), fromB64u(t.sig, 64))))
    throw new VerificationError('E_BAD_SIGNATURE', 'blob ticket: signature does not verify');
}

// ---------------------------------------------------------------- request token

/** The signed fields of a request token. */
export interface BlobRequestClaims {
  /** Signer key text (`hdk_…` or `huk_…`). */
  k: string;
  /** HTTP method, upper case. */
  m: string;
  /** Path with query, as sent. */
  p: string;
  ts: number;
  /** 16 random bytes, b64u. */
  nc: string;
  /** b64u SHA-256 of the body. */
  bh: string;
}

const requestSchema = z
  .object({
    k: keyText,
    m: z.enum(['GET', 'PUT', 'POST', 'DELETE']),
    p: z
      .string()
      .min(1)
      .max(MAX_BLOB_REQUEST_PATH)
      .regex(/^\/[\x21-\x7e]*$/),
    ts: int(0, Number.MAX_SAFE_INTEGER),
    nc: b64(22),
    bh: b64(43),
  })
  .strict();

/** SHA-256 of zero bytes, b64u (the `bh` of an empty body). */
export const EMPTY_BODY_SHA256 = '47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU';

function requestSignedBytes(json: Uint8Array): Uint8Array {
  return concat(utf8(`${label(BLOB_REQUEST_PURPOSE)}\n`), json);
}

/** What a client signs for one request. */
export interface BlobRequestInput {
  method: string;
  /** Path with query, exactly as sent (e.g. `/v1/blobs/hdid_…?kind=event&from=1&to=2`). */
  path: string;
  /** 32-byte SHA-256 of the body (of zero bytes when there is none). */
  bodySha256: Uint8Array;
  ts: number;
  /** 16 random bytes. */
  nonce: Uint8Array;
}

/** Build a request token: `b64u(json) "." b64u(sig)`. RangeError for input outside the schema. */
export async function buildBlobRequestToken(
  signer: Signer,
  kind: SignerKind,
  r: BlobRequestInput,
): Promise<string> {
  if (r.bodySha256.length !== 32 || r.nonce.length !== 16)
    throw new RangeError('bodySha256 must be 32 bytes and nonce 16 bytes');
  const claims: BlobRequestClaims = {
    k: signerKeyText(kind, signer.publicKey),
    m: r.method,
    p: r.path,
    ts: r.ts,
    nc: b64u(r.nonce),
    bh: b64u(r.bodySha256),
  };
  const c = requestSchema.safeParse(claims);
  if (!c.success) throw new RangeError(`blob request: ${describeZod(c.error)}`);
  const json = canonicalBytes(claims);
  const sig = await signer.sign(requestSignedBytes(json));
  return `${b64u(json)}.${b64u(sig)}`;
}

/** A decoded, not yet verified request token. */
export interface DecodedBlobRequest {
  claims: BlobRequestClaims;
  /** The signer's kind and raw key. */
  kind: SignerKind;
  key: Uint8Array;
  /** The signed JSON bytes and the signature. */
  json: Uint8Array;
  sig: Uint8Array;
}

/** Decode a token (no signature check). ProtocolError only: E_TOO_LARGE, E_DECODE, E_SCHEMA, E_BAD_ID. */
export function decodeBlobRequestToken(token: unknown): DecodedBlobRequest {
  if (typeof token !== 'string') throw new ProtocolError('E_DECODE', 'blob request token: not a string');
  if (token.length > MAX_BLOB_REQUEST_TOKEN_CHARS)
    throw new ProtocolError('E_TOO_LARGE', 'blob request token too long');
  const dot = token.indexOf('.');
  if (dot < 0 || token.indexOf('.', dot + 1) >= 0)
    throw new ProtocolError('E_DECODE', 'blob request token: expected <json>.<sig>');
  const jsonText = token.slice(0, dot);
  const json = fromB64u(jsonText, MAX_BLOB_REQUEST_TOKEN_CHARS);
  const sig = fromB64u(token.slice(dot + 1), 64);
  if (sig.length !== 64 || b64u(json) !== jsonText)
    throw new ProtocolError('E_DECODE', 'blob request token: bad encoding');
  const r = requestSchema.safeParse(parseJson(json, MAX_BLOB_REQUEST_TOKEN_CHARS));
  if (!r.success) throw new ProtocolError('E_SCHEMA', `blob request token: ${describeZod(r.error)}`);
  const claims = r.data;
  if (!constantTimeEqual(canonicalBytes(claims), json))
    throw new ProtocolError('E_SCHEMA', 'blob request token: not canonical JSON');
  const kind: SignerKind = claims.k.startsWith('hdk_') ? 'device' : 'user';
  const key = decodeId(kind === 'device' ? 'deviceKey' : 'userKey', claims.k);
  fromB64u(claims.nc, 16);
  fromB64u(claims.bh, 32);
  return { claims, kind, key, json, sig };
}

/** What the receiver checks a token against. */
export interface BlobRequestCheck {
  method: string;
  /** Path with query, as received. */
  path: string;
  /** Receiver's clock (ms). */
  now: number;
  /** Accepted clock difference either way (default {@link BLOB_REQUEST_MAX_SKEW_MS}). */
  maxSkewMs?: number;
}

/** A verified request: who signed, and what the caller still checks (body hash, nonce). */
export interface VerifiedBlobRequest {
  kind: SignerKind;
  /** Raw 32-byte key. */
  key: Uint8Array;
  /** `hdk_…` or `huk_…`. */
  keyText: string;
  ts: number;
  /** For the caller's replay cache (key it with `keyText`). */
  nonce: string;
  /** b64u SHA-256 the signer claims for the body; the caller compares with what it reads. */
  bh: string;
}

/**
 * Verify a request token: decode (ProtocolError), method and path (E_BAD_BINDING), signature
 * (E_BAD_SIGNATURE), then the time window (E_STALE). The replay check is the caller's, with the
 * returned nonce, after the signature (so forgeries never reach its cache).
 */
export async function verifyBlobRequestToken(
  token: unknown,
  check: BlobRequestCheck,
): Promise<VerifiedBlobRequest> {
  const d = decodeBlobRequestToken(token);
  if (d.claims.m !== check.method || d.claims.p !== check.path)
    throw new VerificationError('E_BAD_BINDING', 'blob request token: for another method or path');
  if (!(await ed25519Verify(d.key, requestSignedBytes(d.json), d.sig)))
    throw new VerificationError('E_BAD_SIGNATURE', 'blob request token: signature does not verify');
  const skew = check.maxSkewMs ?? BLOB_REQUEST_MAX_SKEW_MS;
  if (Math.abs(d.claims.ts - check.now) > skew)
    throw new VerificationError(
      'E_STALE',
      `blob request token: stamped ${Math.round((d.claims.ts - check.now) / 1000)} s from the receiver's clock`,
    );
  return blobRequestFields(d);
}

/** The fields of a decoded token as a verified request carries them (after its checks passed). */
export function blobRequestFields(d: DecodedBlobRequest): VerifiedBlobRequest {
  return {
    kind: d.kind,
    key: d.key,
    keyText: d.claims.k,
    ts: d.claims.ts,
    nonce: d.claims.nc,
    bh: d.claims.bh,
  };
}

// ---------------------------------------------------------------- HTTP answers

/** The JSON of `GET /v1/blobs/<dev>?…`. */
export interface BlobListing {
  blobs: { id: string; kind: StoredBlobKind; hr: number; size: number }[];
}
/** The JSON of `GET /v1/blobs/<dev>/usage`. */
export interface BlobUsage {
  bytes: number;
  count: number;
  quotaBytes: number;
}
/** The JSON of a failed request. */
export interface BlobErrorBody {
  code: string;
  message?: string;
}

/** Most entries in one listing. */
export const MAX_BLOB_LISTING = 10_000;
const listingSchema = z
  .object({
    blobs: z
      .array(
        z
          .object({
            id: b64(22),
            kind: z.enum(STORED_BLOB_KINDS),
            hr: int(0, MAX_BLOB_HOUR),
            size: int(0, Number.MAX_SAFE_INTEGER),
          })
          .strict(),
      )
      .max(MAX_BLOB_LISTING),
  })
  .strict();
const usageSchema = z
  .object({
    bytes: int(0, Number.MAX_SAFE_INTEGER),
    count: int(0, Number.MAX_SAFE_INTEGER),
    quotaBytes: int(0, Number.MAX_SAFE_INTEGER),
  })
  .strict();
const errorBodySchema = z.object({
  code: z
    .string()
    .max(64)
    .regex(/^E_[A-Z0-9_]+$/),
  message: z.string().max(512).optional(),
});

/** Decode a listing answer (ProtocolError only). */
export function decodeBlobListing(input: string | Uint8Array): BlobListing {
  const r = listingSchema.safeParse(parseJson(input, 1 << 20));
  if (!r.success) throw new ProtocolError('E_SCHEMA', `blob listing: ${describeZod(r.error)}`);
  return r.data;
}
/** Decode a usage answer (ProtocolError only). */
export function decodeBlobUsage(input: string | Uint8Array): BlobUsage {
  const r = usageSchema.safeParse(parseJson(input, 1024));
  if (!r.success) throw new ProtocolError('E_SCHEMA', `blob usage: ${describeZod(r.error)}`);
  return r.data;
}
/** Decode an error answer (ProtocolError only); extra fields are ignored. */
export function decodeBlobErrorBody(input: string | Uint8Array): BlobErrorBody {
  const r = errorBodySchema.safeParse(parseJson(input, 4096));
  if (!r.success) throw new ProtocolError('E_SCHEMA', `blob error: ${describeZod(r.error)}`);
  return r.data.message === undefined
    ? { code: r.data.code }
    : { code: r.data.code, message: r.data.message };
}

// ---------------------------------------------------------------- clients (shared by agent and viewer)

/** `ws(s)://host/…/ws` or `http(s)://host/…` → `http(s)://host/…` (no trailing slash), the blob store's base. */
export function blobBaseUrl(serverUrl: string): string {
  let u: URL;
  try {
    u = new URL(serverUrl);
  } catch {
    throw new ConfigError('E_CONFIG', `not a server URL: ${JSON.stringify(serverUrl.slice(0, 100))}`);
  }
  const scheme = { 'ws:': 'http:', 'wss:': 'https:', 'http:': 'http:', 'https:': 'https:' }[u.protocol];
  if (!scheme) throw new ConfigError('E_CONFIG', `server URL must be ws(s) or http(s): ${u.protocol}`);
  const path = u.pathname.replace(/\/ws\/?$/, '').replace(/\/$/, '');
  return `${scheme}//${u.host}${path}`;
}

/**
 * Path of a device's blobs (`/v1/blobs/<dev>`), of one blob, or of a sub-resource. E_BAD_ID when
 * `dev` is not a device ID or `id` not a blob ID (nothing else can reach a URL).
 */
export function blobPath(dev: string, id?: string, sub?: 'ticket'): string {
  decodeId('deviceId', dev);
  if (id !== undefined && !isBlobId(id))
    throw new ProtocolError('E_BAD_ID', 'not a blob ID (22 b64u characters)');
  return `/v1/blobs/${dev}${id === undefined ? '' : `/${id}`}${sub ? `/${sub}` : ''}`;
}

/** The query string of a listing (empty, or `?kind=…&from=…&to=…`). */
export function blobListQuery(q: { kind?: StoredBlobKind; from?: number; to?: number } = {}): string {
  const parts: string[] = [];
  if (q.kind !== undefined) parts.push(`kind=${q.kind}`);
  if (q.from !== undefined) parts.push(`from=${q.from}`);
  if (q.to !== undefined) parts.push(`to=${q.to}`);
  return parts.length ? `?${parts.join('&')}` : '';
}

/**
 * The `authorization` header of one request, signed now with a fresh nonce. `pathWithQuery` is
 * exactly what is sent after the host.
 */
export async function blobAuthorization(
  signer: Signer,
  kind: SignerKind,
  method: string,
  pathWithQuery: string,
  body: Uint8Array | undefined,
  env: CryptoEnv,
): Promise<string> {
  const token = await buildBlobRequestToken(signer, kind, {
    method,
    path: pathWithQuery,
    bodySha256: await sha256(body ?? new Uint8Array()),
    ts: env.now(),
    nonce: env.random(16),
  });
  return `Hearth ${token}`;
}

/**
 * The typed error of a failed blob-store answer: the registered code in its JSON body, as the
 * class the registry names (`errorFromCode`). An answer without a registered code is
 * `E_DECODE` (status in the message).
 */
export function blobStoreError(status: number, body: Uint8Array): HearthError {
  let b: BlobErrorBody | undefined;
  try {
    b = decodeBlobErrorBody(body);
  } catch {}
  if (b && isErrorCode(b.code))
    return errorFromCode(b.code, `blob store: HTTP ${status}${b.message ? `: ${b.message}` : ''}`);
  return new ProtocolError('E_DECODE', `blob store: HTTP ${status} without a registered error code`);
}
