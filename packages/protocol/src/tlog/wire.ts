/**
 * The access log on the wire: the `log/get` / `log/update` messages a device and an owner's viewer
 * exchange inside the sealed channel (messages.ts), and the witness gossip the server keeps
 * (`PUT/GET /v1/log/<deviceId>/cosigned`, docs/protocol.md "The access log").
 *
 * `log/update {cp, cons, start, entries, proofs, wcons?}`:
 * - `cp`: the device-signed checkpoint note of size `start + entries.length` (a page: a long log is
 *   read in several updates, each checkpoint an earlier state of the same tree);
 * - `cons`: the consistency proof from the `from` of `log/get` (= `start`) to that size;
 * - `entries[i]`: the leaf data of entry `start + i` (b64u), `proofs[i]` its inclusion proof;
 * - `wcons[j]` (answer to `log/get`'s `wit[j]`): the consistency proof between the tree of size
 *   `wit[j]` and `cp` (smaller to larger), for the cosigned checkpoints the viewer got from the
 *   server's gossip.
 *
 * {@link decodeLogUpdateWire} turns it into the monitor's {@link LogUpdate}: size limits, a strict
 * schema, canonical b64u of 32-byte hashes; only ProtocolError.
 */
import { z } from 'zod';
import { b64u, fromB64u } from '../bytes.js';
import { parseJson } from '../canonical.js';
import { describeZod } from '../envelope.js';
import { HearthError, ProtocolError } from '../errors.js';
import { isId } from '../ids.js';
import { MAX_LOG_ENTRY_BYTES } from './entry.js';
import { HASH_SIZE, MAX_PROOF_HASHES } from './merkle.js';
import type { LogUpdate, WitnessedCheckpoint } from './monitor.js';
import { MAX_WITNESSED } from './monitor.js';
import { MAX_NOTE_BYTES } from './note.js';

/** Most entries one `log/update` carries (`log/get`'s `max`: 1 to this). */
export const MAX_LOG_PAGE = 256;
/** Characters of a b64u hash (32 bytes). */
const HASH_CHARS = 43;
/** Characters of a b64u entry of MAX_LOG_ENTRY_BYTES. */
const ENTRY_CHARS = Math.ceil((MAX_LOG_ENTRY_BYTES * 4) / 3);
/** Largest `log/update` accepted by {@link decodeLogUpdateWire} (the channel's MAX_MESSAGE_BYTES). */
export const MAX_LOG_UPDATE_CHARS = 66 * 1024;

const hash = z.string().length(HASH_CHARS);
const proof = z.array(hash).max(MAX_PROOF_HASHES);
const size = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

/** `log/get` (viewer → device), owners only. */
export const logGetSchema = z
  .object({
    t: z.literal('log/get'),
    /** First entry wanted: the size of the last checkpoint the viewer verified (0: from the start). */
    from: size,
    /** Most entries in the answer (default and cap: the device's page size). */
    max: z.number().int().min(1).max(MAX_LOG_PAGE).optional(),
    /** Sizes of cosigned checkpoints from the gossip, to prove consistency with (`wcons`). */
    wit: z.array(size).max(MAX_WITNESSED).optional(),
  })
  .strict();
export type LogGet = z.infer<typeof logGetSchema>;

/** `log/update` (device → viewer). */
export const logUpdateSchema = z
  .object({
    t: z.literal('log/update'),
    cp: z.string().min(1).max(MAX_NOTE_BYTES),
    cons: proof,
    start: size,
    entries: z.array(z.string().min(1).max(ENTRY_CHARS)).max(MAX_LOG_PAGE),
    proofs: z.array(proof).max(MAX_LOG_PAGE),
    wcons: z.array(proof).max(MAX_WITNESSED).optional(),
  })
  .strict();
/** A `log/update` as it travels. */
export type LogUpdateWire = z.infer<typeof logUpdateSchema>;

function decodeHash(s: string): Uint8Array {
  const b = fromB64u(s, HASH_SIZE);
  if (b.length !== HASH_SIZE || b64u(b) !== s)
    throw new ProtocolError('E_DECODE', 'log/update: a hash is not 32 bytes of canonical b64u');
  return b;
}

function decodeEntry(s: string): Uint8Array {
  const b = fromB64u(s, MAX_LOG_ENTRY_BYTES);
  if (b.length === 0 || b64u(b) !== s)
    throw new ProtocolError('E_DECODE', 'log/update: an entry is not canonical b64u');
  return b;
}

/** Encode a proof (hash list) for the wire. */
export function encodeProofWire(p: readonly Uint8Array[]): string[] {
  return p.map((h) => b64u(h));
}

/**
 * Decode a `log/update` (the message object, or its JSON text) into the monitor's {@link LogUpdate}.
 * `witnessed` are the cosigned checkpoint notes from the server's gossip, in the order of the
 * `wit` sizes the viewer asked for; each is paired with `wcons[j]` (missing: an empty proof, which
 * fails unless the two checkpoints are the same). Raises ProtocolError only: E_TOO_LARGE,
 * E_DECODE, E_SCHEMA (entries and proofs not one for one, too many witnessed notes).
 */
export function decodeLogUpdateWire(m: unknown, witnessed: readonly string[] = []): LogUpdate {
  try {
    let v = m;
    if (typeof m === 'string') {
      if (m.length > MAX_LOG_UPDATE_CHARS)
        throw new ProtocolError('E_TOO_LARGE', `log/update larger than ${MAX_LOG_UPDATE_CHARS}`);
      v = parseJson(m, MAX_LOG_UPDATE_CHARS);
    }
    if (typeof v !== 'object' || v === null || Array.isArray(v))
      throw new ProtocolError('E_SCHEMA', 'log/update: not an object');
    let chars: number;
    try {
      chars = JSON.stringify(v).length;
    } catch {
      throw new ProtocolError('E_SCHEMA', 'log/update: not JSON');
    }
    if (chars > MAX_LOG_UPDATE_CHARS)
      throw new ProtocolError('E_TOO_LARGE', `log/update larger than ${MAX_LOG_UPDATE_CHARS}`);
    const r = logUpdateSchema.safeParse(v);
    if (!r.success) throw new ProtocolError('E_SCHEMA', `log/update: ${describeZod(r.error)}`);
    const w = r.data;
    if (w.entries.length !== w.proofs.length)
      throw new ProtocolError('E_SCHEMA', 'log/update: not one inclusion proof per entry');
    if (witnessed.length > MAX_WITNESSED)
      throw new ProtocolError('E_TOO_LARGE', `more than ${MAX_WITNESSED} witnessed checkpoints`);
    const wcons = w.wcons ?? [];
    const wit: WitnessedCheckpoint[] = witnessed.map((note, j) => ({
      note,
      consistency: (wcons[j] ?? []).map(decodeHash),
    }));
    return {
      checkpoint: w.cp,
      consistency: w.cons.map(decodeHash),
      entries: {
        start: w.start,
        entries: w.entries.map(decodeEntry),
        proofs: w.proofs.map((p) => p.map(decodeHash)),
      },
      ...(wit.length ? { witnessed: wit } : {}),
    };
  } catch (e) {
    if (e instanceof HearthError) {
      if (e instanceof ProtocolError) throw e;
      throw new ProtocolError('E_DECODE', `log/update: ${e.message}`);
    }
    throw new ProtocolError('E_DECODE', 'log/update: undecodable');
  }
}

// ---------------------------------------------------------------- witness gossip (server)

/** Path of a device's cosigned checkpoints on the server. */
export function logCosignedPath(deviceId: string): string {
  if (!isId('deviceId', deviceId)) throw new RangeError('not a device ID');
  return `/v1/log/${deviceId}/cosigned`;
}

/** Largest cosigned note the server keeps (bytes of its UTF-8). */
export const MAX_COSIGNED_NOTE_BYTES = 4 * 1024;
/** Most cosigned notes the server keeps per device (one per cosigner key). */
export const MAX_COSIGNED_PER_DEVICE = 16;
/** Largest `PUT /v1/log/<deviceId>/cosigned` body, in bytes. */
export const MAX_COSIGNED_BODY_BYTES = MAX_COSIGNED_NOTE_BYTES + 512;

const userKey = z.string().refine((s) => isId('userKey', s), 'a huk_ user key');
const deviceKey = z.string().refine((s) => isId('deviceKey', s), 'an hdk_ device key');

/**
 * The body of `PUT /v1/log/<deviceId>/cosigned`: the checkpoint note (device-signed, with the
 * cosignature line of `key`), the cosigner's user key (its cosigner name), and the device key the
 * note is signed with (the server checks it hashes to the device ID and verifies both signatures).
 */
export const cosignedBodySchema = z
  .object({
    note: z.string().min(1).max(MAX_COSIGNED_NOTE_BYTES),
    key: userKey,
    dk: deviceKey,
  })
  .strict();
export type CosignedBody = z.infer<typeof cosignedBodySchema>;

/** `GET /v1/log/<deviceId>/cosigned` → the latest note of each cosigner. */
export const cosignedListSchema = z
  .object({
    list: z
      .array(z.object({ note: z.string().min(1).max(MAX_COSIGNED_NOTE_BYTES) }).strict())
      .max(MAX_COSIGNED_PER_DEVICE),
  })
  .strict();
export type CosignedList = z.infer<typeof cosignedListSchema>;

function decodeJsonBody<T>(input: unknown, schema: z.ZodType<T>, max: number, what: string): T {
  let v: unknown;
  if (typeof input === 'string' || input instanceof Uint8Array) {
    if (input.length > max) throw new ProtocolError('E_TOO_LARGE', `${what} larger than ${max}`);
    v = parseJson(input, max);
  } else {
    throw new ProtocolError('E_DECODE', `${what}: expected JSON text or bytes`);
  }
  const r = schema.safeParse(v);
  if (!r.success) throw new ProtocolError('E_SCHEMA', `${what}: ${describeZod(r.error)}`);
  return r.data;
}

/** Decode a PUT body (no signature check). ProtocolError only. */
export function decodeCosignedBody(input: unknown): CosignedBody {
  return decodeJsonBody(input, cosignedBodySchema, MAX_COSIGNED_BODY_BYTES, 'cosigned note');
}

/** Decode the GET answer (the notes are verified by the viewer, LogMonitor). ProtocolError only. */
export function decodeCosignedList(input: unknown): CosignedList {
  return decodeJsonBody(
    input,
    cosignedListSchema,
    MAX_COSIGNED_PER_DEVICE * (MAX_COSIGNED_NOTE_BYTES + 32) + 64,
    'cosigned list',
  );
}
