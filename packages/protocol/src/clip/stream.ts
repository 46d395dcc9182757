/**
 * STREAM chunked AEAD for sealed blobs (clips, snapshots, event records), after C2SP age's payload
 * format: a random 32-byte content key per blob, a random 16-byte salt, and
 *
 * ```
 * payloadKey = HKDF-SHA-256(ikm = contentKey, salt, info = "hearth/v1/clip/payload", 32)
 * nonce_i    = u88be(i) ‖ (0x01 for the last chunk, else 0x00)          12 bytes
 * ct_i       = AES-256-GCM(payloadKey, nonce_i, chunk_i, aad = "")     chunk_i ≤ maxChunk bytes
 * ```
 *
 * The counter puts each chunk at its place (reordered or duplicated chunks fail), the last-chunk flag
 * makes truncation visible, and the payload key, fresh per blob, makes a chunk from another blob
 * fail. Every failure is VerificationError E_CLIP_CHUNK. The key is imported once per blob, and a
 * chunk's ciphertext is hashed (SHA-256, WebCrypto) as it is sealed or opened, for the signed digest
 * of the header (`chunkDigest`).
 *
 * The chunk AEAD is pluggable ({@link ChunkAead}): WebCrypto by default (browsers, and anywhere), or
 * e.g. node:crypto on the device (`@hearth/node` `nodeChunkAead`), which avoids WebCrypto's cost per
 * call. It is the same AES-256-GCM under the same key and nonces, so the bytes are the same.
 */
import { sha256 as sha256Sync } from '@noble/hashes/sha2.js';
import { utf8 } from '../bytes.js';
import { hkdfSha256, info, label } from '../crypto/primitives.js';
import { ProtocolError, VerificationError } from '../errors.js';

/** Purpose label of the payload key (HKDF info). */
export const CLIP_PAYLOAD_PURPOSE = 'clip/payload';
/** Purpose label of the chunk digest. */
export const CLIP_CHUNKS_PURPOSE = 'clip/chunks';
/** Default chunk plaintext size. */
export const CLIP_CHUNK_BYTES = 64 * 1024;
/** Largest chunk plaintext (one fMP4 fragment, caller-chosen). */
export const MAX_CLIP_CHUNK_BYTES = 1024 * 1024;
/** The GCM tag appended to every chunk. */
export const CLIP_TAG_BYTES = 16;
/** Content key and salt sizes. */
export const CLIP_KEY_BYTES = 32;
export const CLIP_SALT_BYTES = 16;
/** Most chunks in one blob (the counter has 88 bits; this bound keeps it a safe integer). */
export const MAX_CLIP_CHUNKS = 2 ** 32;

const subtle = (): SubtleCrypto => globalThis.crypto.subtle;

/**
 * An AES-256-GCM implementation for the chunks: 32-byte raw key, 12-byte nonce, the 16-byte tag
 * appended to the ciphertext. It must be exactly AES-256-GCM (the format does not say who computes
 * it); the cross tests pin an implementation to the WebCrypto one byte for byte.
 */
export interface ChunkAead {
  /** ct ‖ tag. */
  seal(
    key: Uint8Array,
    nonce: Uint8Array,
    plaintext: Uint8Array,
    aad: Uint8Array,
  ): Uint8Array | Promise<Uint8Array>;
  /** The plaintext; throws (anything: the caller maps it to E_CLIP_CHUNK) when it does not authenticate. */
  open(
    key: Uint8Array,
    nonce: Uint8Array,
    ciphertext: Uint8Array,
    aad: Uint8Array,
  ): Uint8Array | Promise<Uint8Array>;
  /** SHA-256 of one chunk's ciphertext, for the digest; WebCrypto's when absent. */
  sha256?(data: Uint8Array): Uint8Array | Promise<Uint8Array>;
}

const NO_AAD = new Uint8Array(0);

/** What seals, opens and hashes the chunks of one blob: WebCrypto, or a {@link ChunkAead}. */
interface ChunkEngine {
  seal(nonce: Uint8Array<ArrayBuffer>, plaintext: Uint8Array): Promise<Uint8Array>;
  open(nonce: Uint8Array<ArrayBuffer>, ciphertext: Uint8Array): Promise<Uint8Array>;
  hash?: (data: Uint8Array) => Uint8Array | Promise<Uint8Array>;
  /** Forget the key (after the last chunk). */
  wipe(): void;
}

async function chunkEngine(contentKey: Uint8Array, salt: Uint8Array, aead?: ChunkAead): Promise<ChunkEngine> {
  if (!aead) {
    const key = await importPayloadKey(contentKey, salt);
    return {
      seal: (iv, pt) =>
        subtle()
          .encrypt({ name: 'AES-GCM', iv }, key, buf(pt))
          .then((ab) => new Uint8Array(ab)),
      open: (iv, ct) =>
        subtle()
          .decrypt({ name: 'AES-GCM', iv }, key, buf(ct))
          .then((ab) => new Uint8Array(ab)),
      wipe: () => {},
    };
  }
  const key = await derivePayloadKey(contentKey, salt);
  const hash = aead.sha256?.bind(aead);
  return {
    // A throw from a synchronous implementation becomes a rejection, like WebCrypto's.
    seal: async (nonce, pt) => aead.seal(key, nonce, pt, NO_AAD),
    open: async (nonce, ct) => aead.open(key, nonce, ct, NO_AAD),
    ...(hash ? { hash } : {}),
    wipe: () => key.fill(0),
  };
}

/** Bytes WebCrypto accepts without a copy when they already own a plain ArrayBuffer. */
function buf(b: Uint8Array): Uint8Array<ArrayBuffer> {
  if (b.buffer instanceof ArrayBuffer) return b as Uint8Array<ArrayBuffer>;
  const out = new Uint8Array(b.length);
  out.set(b);
  return out;
}

/** The 12-byte nonce of chunk `counter`: 11-byte big-endian counter ‖ last-chunk flag. */
export function chunkNonce(counter: number, last: boolean): Uint8Array<ArrayBuffer> {
  if (!Number.isSafeInteger(counter) || counter < 0 || counter >= MAX_CLIP_CHUNKS)
    throw new ProtocolError('E_TOO_LARGE', 'clip: too many chunks');
  const n = new Uint8Array(12);
  const v = new DataView(n.buffer);
  v.setUint32(3, Math.floor(counter / 2 ** 32), false);
  v.setUint32(7, counter >>> 0, false);
  n[11] = last ? 1 : 0;
  return n;
}

/** payloadKey = HKDF-SHA-256(contentKey, salt, "hearth/v1/clip/payload"), as a raw 32-byte key. */
export async function derivePayloadKey(contentKey: Uint8Array, salt: Uint8Array): Promise<Uint8Array> {
  if (contentKey.length !== CLIP_KEY_BYTES || salt.length !== CLIP_SALT_BYTES)
    throw new ProtocolError('E_CLIP_HEADER', 'clip: content key must be 32 bytes and salt 16');
  return hkdfSha256(contentKey, salt, info(CLIP_PAYLOAD_PURPOSE), 32);
}

async function importPayloadKey(contentKey: Uint8Array, salt: Uint8Array): Promise<CryptoKey> {
  // derivePayloadKey checks the sizes.
  const raw = await derivePayloadKey(contentKey, salt);
  try {
    return await subtle().importKey('raw', buf(raw), 'AES-GCM', false, ['encrypt', 'decrypt']);
  } finally {
    raw.fill(0);
  }
}

/**
 * The running digest of a blob's chunks: SHA-256("hearth/v1/clip/chunks" ‖ SHA-256(ct_0) ‖ … ‖
 * SHA-256(ct_{n-1})). Each chunk's own hash is native (WebCrypto, off the main thread in Node), so
 * hashing and sealing of several chunks may overlap; the list is folded in order at the end.
 */
export class ChunkDigest {
  private readonly hashes: (Uint8Array | Promise<ArrayBuffer | Uint8Array>)[] = [];
  /** `hash`: SHA-256 of one chunk (e.g. node:crypto's); WebCrypto's by default. */
  constructor(private readonly hash?: (data: Uint8Array) => Uint8Array | Promise<Uint8Array>) {}
  private one(c: Uint8Array): Uint8Array | Promise<ArrayBuffer | Uint8Array> {
    return this.hash ? this.hash(c) : subtle().digest('SHA-256', buf(c));
  }
  /** Hash chunk `i`'s ciphertext, or queue it when it is still being sealed (call in order). */
  add(ct: Uint8Array | Promise<Uint8Array>): void {
    const h = ct instanceof Uint8Array ? this.one(ct) : ct.then((c) => this.one(c));
    if (!(h instanceof Uint8Array)) h.catch(() => {}); // awaited (and rethrown) by digest()
    this.hashes.push(h);
  }
  get count(): number {
    return this.hashes.length;
  }
  async digest(): Promise<Uint8Array> {
    const h = sha256Sync.create();
    h.update(utf8(label(CLIP_CHUNKS_PURPOSE)));
    for (const p of this.hashes) {
      const d = p instanceof Uint8Array ? p : await p;
      h.update(d instanceof Uint8Array ? d : new Uint8Array(d));
    }
    return h.digest();
  }
}

/** Seals the chunks of one blob in order. Calls may overlap (the counter is taken at the call). */
export class StreamSealer {
  private counter = 0;
  private done = false;
  private readonly digest: ChunkDigest;
  private constructor(
    private readonly engine: ChunkEngine,
    readonly maxChunkBytes: number,
  ) {
    this.digest = new ChunkDigest(engine.hash);
  }

  /**
   * A sealer for `contentKey` and `salt`; chunks up to `maxChunkBytes` (≤ 1 MiB); `aead` seals the
   * chunks instead of WebCrypto (same bytes).
   */
  static async create(
    contentKey: Uint8Array,
    salt: Uint8Array,
    maxChunkBytes = CLIP_CHUNK_BYTES,
    aead?: ChunkAead,
  ): Promise<StreamSealer> {
    if (!Number.isSafeInteger(maxChunkBytes) || maxChunkBytes < 1 || maxChunkBytes > MAX_CLIP_CHUNK_BYTES)
      throw new ProtocolError('E_TOO_LARGE', `clip: chunk size must be 1..${MAX_CLIP_CHUNK_BYTES} bytes`);
    return new StreamSealer(await chunkEngine(contentKey, salt, aead), maxChunkBytes);
  }

  /** Chunks sealed so far. */
  get chunks(): number {
    return this.counter;
  }
  /** True once the last chunk is sealed. */
  get finished(): boolean {
    return this.done;
  }

  /**
   * Seal the next chunk (`last` for the final one). Only a blob's only chunk may be empty.
   * E_BAD_STATE after the last chunk, E_TOO_LARGE past the chunk size.
   */
  seal(plaintext: Uint8Array, last: boolean): Promise<Uint8Array> {
    if (this.done) throw new ProtocolError('E_BAD_STATE', 'clip: chunk after the last one');
    if (plaintext.length > this.maxChunkBytes)
      throw new ProtocolError('E_TOO_LARGE', `clip: chunk larger than ${this.maxChunkBytes} bytes`);
    if (plaintext.length === 0 && !(last && this.counter === 0))
      throw new ProtocolError('E_BAD_STATE', 'clip: only the only chunk may be empty');
    const nonce = chunkNonce(this.counter++, last);
    if (last) this.done = true;
    const p = this.engine.seal(nonce, plaintext);
    // The digest list stays in order even when calls overlap: hash i is queued at call i.
    this.digest.add(p);
    return p;
  }

  /** The chunk digest (once every chunk is sealed; the key is then forgotten); E_BAD_STATE before the last chunk. */
  async chunkDigest(): Promise<Uint8Array> {
    if (!this.done) throw new ProtocolError('E_BAD_STATE', 'clip: not finished (no last chunk)');
    try {
      return await this.digest.digest();
    } finally {
      this.engine.wipe();
    }
  }
}

/** Opens the chunks of one blob in order; knows the chunk count from the (signed) header. */
export class StreamOpener {
  private counter = 0;
  private readonly digest: ChunkDigest;
  private constructor(
    private readonly engine: ChunkEngine,
    readonly maxChunkBytes: number,
    readonly count: number,
  ) {
    this.digest = new ChunkDigest(engine.hash);
  }

  /** An opener of `count` chunks of up to `maxChunkBytes`; `aead` opens them instead of WebCrypto. */
  static async create(
    contentKey: Uint8Array,
    salt: Uint8Array,
    maxChunkBytes: number,
    count: number,
    aead?: ChunkAead,
  ): Promise<StreamOpener> {
    if (!Number.isSafeInteger(count) || count < 1 || count > MAX_CLIP_CHUNKS)
      throw new ProtocolError('E_CLIP_HEADER', 'clip: bad chunk count');
    return new StreamOpener(await chunkEngine(contentKey, salt, aead), maxChunkBytes, count);
  }

  /** Chunks opened so far. */
  get opened(): number {
    return this.counter;
  }
  /** True once the last chunk is opened. */
  get finished(): boolean {
    return this.counter === this.count;
  }

  /**
   * Open the next chunk. VerificationError E_CLIP_CHUNK when it does not authenticate at this
   * position (tampered, reordered, duplicated, from another blob) or comes after the last one.
   */
  async open(ct: Uint8Array): Promise<Uint8Array> {
    if (this.counter >= this.count)
      throw new VerificationError('E_CLIP_CHUNK', 'clip: data after the last chunk');
    if (ct.length < CLIP_TAG_BYTES || ct.length > this.maxChunkBytes + CLIP_TAG_BYTES)
      throw new VerificationError('E_CLIP_CHUNK', `clip: chunk ${this.counter} has an impossible length`);
    const i = this.counter;
    const last = i === this.count - 1;
    if (ct.length === CLIP_TAG_BYTES && !(last && i === 0))
      throw new VerificationError('E_CLIP_CHUNK', `clip: chunk ${i} is empty`);
    this.digest.add(ct);
    let pt: Uint8Array;
    try {
      pt = await this.engine.open(chunkNonce(i, last), ct);
    } catch {
      throw new VerificationError('E_CLIP_CHUNK', `clip: chunk ${i} does not authenticate at its position`);
    }
    this.counter++;
    if (this.counter === this.count) this.engine.wipe();
    return pt;
  }

  /** The digest of the chunks opened; E_CLIP_TRUNCATED before the last one. */
  async chunkDigest(): Promise<Uint8Array> {
    if (!this.finished)
      throw new VerificationError(
        'E_CLIP_TRUNCATED',
        `clip: ${this.counter} of ${this.count} chunks, the last is missing`,
      );
    return this.digest.digest();
  }
}
