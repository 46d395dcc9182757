/**
 * Sealed blobs, end to end: the device seals a clip, snapshot or event record chunk by chunk and
 * then seals the metadata box and signs the header; a viewer verifies the header against the
 * pinned device key, unwraps the content key with its reader key, opens the metadata box (camera
 * name and exact times; the camera check is here), and opens the chunks as they arrive (MSE
 * playback) or all at once.
 *
 * Streaming open: every chunk is authenticated (AES-256-GCM under the blob's payload key) before its
 * plaintext is released, but only the last one also proves that the chunks are the ones the device
 * signed (the digest): any recipient knows the content key and could forge a chunk for the others.
 * {@link BlobOpener} releases the last chunk only once the digest matches, so a caller that plays as
 * it goes must treat the blob as unconfirmed until `finish()` (or the last `push`) succeeds.
 */
import { b64u, concat, constantTimeEqual, fromB64u, u32be, utf8, wipe } from '../bytes.js';
import { canonicalBytes } from '../canonical.js';
import { type CryptoEnv, systemEnv } from '../crypto/env.js';
import type { Signer } from '../crypto/primitives.js';
import { ProtocolError, VerificationError } from '../errors.js';
import { type DeviceKeyText, deviceIdFromKey, encodeId } from '../ids.js';
import {
  type BlobKind,
  CLIP_MAGIC,
  type ClipHeader,
  type ClipHeaderExpectation,
  type ClipReader,
  type ClipRecipient,
  clipMetaAad,
  clipWrapAad,
  clipWrapInfo,
  decodeClipHeader,
  encodeClipHeader,
  MAX_CLIP_RECIPIENTS,
  signClipHeader,
  unwrapContentKey,
  type VerifiedClipHeader,
  verifyClipHeader,
  wrapContentKey,
} from './header.js';
import { type ClipMeta, checkClipMeta, clipHour, openClipMeta, sealClipMeta } from './meta.js';
import { type ReaderKey, verifyReaderKey } from './reader-key.js';
import {
  type ChunkAead,
  CLIP_CHUNK_BYTES,
  CLIP_KEY_BYTES,
  CLIP_SALT_BYTES,
  CLIP_TAG_BYTES,
  StreamOpener,
  StreamSealer,
} from './stream.js';

/** What a blob is, known when sealing starts. */
export interface BlobSealOptions {
  /** The device's signer (its `hdk_` key). */
  device: Signer;
  kind: BlobKind;
  camera: string;
  /** Start time, ms since the epoch. */
  t0: number;
  /** The reader keys of the current epoch (each viewer whose grant has the `clips` scope). */
  recipients: readonly ReaderKey[];
  /** Largest chunk plaintext (default 64 KiB, at most 1 MiB). */
  maxChunkBytes?: number;
  /** Blob ID (b64u of 16 bytes); drawn from `env` when absent. */
  id?: string;
  /** Randomness (content key, salt, ID, HPKE ephemeral keys); {@link systemEnv} by default. */
  env?: CryptoEnv;
  /**
   * TEST ONLY, the broken defence of the storage-scan control: also write `cam`, `t0` and `t1` in
   * the clear header, as format v1 did. Such a blob does not decode (the strict schema refuses the
   * extra fields), so it can never pass for a real one. Never set it outside a test.
   */
  __testOnly_clearMeta?: boolean;
  /** The chunk AEAD (same bytes), e.g. `@hearth/node` `nodeChunkAead` on the device; WebCrypto by default. */
  aead?: ChunkAead;
}

/** What the viewer asks of a blob when opening it. */
export interface BlobOpenOptions extends ClipHeaderExpectation {
  reader: ClipReader;
  /** When set, the blob must be for this camera (checked inside the metadata box, E_BAD_BINDING). */
  camera?: string;
  /** The chunk AEAD (same bytes); WebCrypto by default. */
  aead?: ChunkAead;
}

function frame(ct: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + ct.length);
  out.set(u32be(ct.length), 0);
  out.set(ct, 4);
  return out;
}

/** Seals one blob: chunks first (each returned as a frame), the signed header at the end. */
export class BlobSealer {
  private plaintextBytes = 0;
  private contentKey: Uint8Array | undefined;
  private constructor(
    private readonly o: BlobSealOptions,
    private readonly recipients: ReaderKey[],
    private readonly stream: StreamSealer,
    contentKey: Uint8Array,
    private readonly salt: Uint8Array,
    readonly id: string,
    private readonly env: CryptoEnv,
  ) {
    this.contentKey = contentKey;
  }

  /**
   * Start a blob. Checks the recipients first: 1..{@link MAX_CLIP_RECIPIENTS} (E_TOO_LARGE,
   * E_BAD_STATE for none), one key per viewer (E_BAD_STATE), each signature valid (E_BAD_SIGNATURE).
   */
  static async create(o: BlobSealOptions): Promise<BlobSealer> {
    if (o.recipients.length > MAX_CLIP_RECIPIENTS)
      throw new ProtocolError('E_TOO_LARGE', `clip: more than ${MAX_CLIP_RECIPIENTS} recipients`);
    if (o.recipients.length === 0) throw new ProtocolError('E_BAD_STATE', 'clip: no recipients');
    const sorted = [...o.recipients].sort((a, b) =>
      a.userKey < b.userKey ? -1 : a.userKey > b.userKey ? 1 : 0,
    );
    for (let i = 1; i < sorted.length; i++)
      if (sorted[i - 1]!.userKey === sorted[i]!.userKey)
        throw new ProtocolError('E_BAD_STATE', 'clip: two reader keys for one viewer');
    checkClipMeta({ cam: o.camera, t0: o.t0, t1: o.t0 });
    for (const r of sorted) await verifyReaderKey(r);
    const env = o.env ?? systemEnv;
    const id = o.id ?? b64u(env.random(16));
    if (fromB64u(id, 16).length !== 16) throw new ProtocolError('E_DECODE', 'clip: id must be 16 bytes');
    const contentKey = env.random(CLIP_KEY_BYTES);
    const salt = env.random(CLIP_SALT_BYTES);
    const stream = await StreamSealer.create(contentKey, salt, o.maxChunkBytes ?? CLIP_CHUNK_BYTES, o.aead);
    return new BlobSealer(o, sorted, stream, contentKey, salt, id, env);
  }

  /** Largest chunk plaintext. */
  get maxChunkBytes(): number {
    return this.stream.maxChunkBytes;
  }

  /**
   * Seal the next chunk (one fMP4 fragment, or up to `maxChunkBytes`): the frame to store or send.
   * Calls may overlap (the position is taken at the call). E_BAD_STATE after the last chunk.
   */
  async sealChunk(plaintext: Uint8Array, last = false): Promise<Uint8Array> {
    const p = this.stream.seal(plaintext, last);
    this.plaintextBytes += plaintext.length;
    return frame(await p);
  }

  /** Seal the next chunk and return the bare ciphertext (callers that frame it themselves). */
  sealChunkRaw(plaintext: Uint8Array, last = false): Promise<Uint8Array> {
    const p = this.stream.seal(plaintext, last);
    this.plaintextBytes += plaintext.length;
    return p;
  }

  /**
   * After the last chunk: seal the metadata box (camera, t0, t1), wrap the content key to every
   * recipient, sign, and return the encoded header (which goes first in the blob). E_BAD_STATE
   * before the last chunk, a second time, or for `t1` before `t0`.
   */
  async finish(o: { t1: number }): Promise<{ header: ClipHeader; bytes: Uint8Array }> {
    const contentKey = this.contentKey;
    if (!contentKey) throw new ProtocolError('E_BAD_STATE', 'clip: already finished');
    const dg = await this.stream.chunkDigest();
    this.contentKey = undefined;
    try {
      const dk = encodeId('deviceKey', this.o.device.publicKey) as DeviceKeyText;
      if (!(o.t1 >= this.o.t0)) throw new ProtocolError('E_BAD_STATE', 'clip: t1 before t0');
      const meta = checkClipMeta({ cam: this.o.camera, t0: this.o.t0, t1: o.t1 });
      const clear = {
        v: 2 as const,
        kind: this.o.kind,
        dev: deviceIdFromKey(this.o.device.publicKey),
        dk,
        id: this.id,
        hr: clipHour(meta.t0),
        salt: b64u(this.salt),
        cs: this.stream.maxChunkBytes,
        n: this.stream.chunks,
        len: this.plaintextBytes,
        dg: b64u(dg),
      };
      const core = { ...clear, m: await sealClipMeta(contentKey, this.salt, meta, clipMetaAad(clear)) };
      const infoBytes = clipWrapInfo(core);
      const r: ClipRecipient[] = [];
      for (const rk of this.recipients) {
        const x = b64u(rk.x25519);
        const { enc, wrapped } = await wrapContentKey(
          contentKey,
          rk.x25519,
          infoBytes,
          clipWrapAad(rk.userKey, x),
          this.env.random(32),
        );
        r.push({ k: rk.userKey, x, s: b64u(rk.signature), e: b64u(enc), w: b64u(wrapped) });
      }
      const header = await signClipHeader(this.o.device, { ...core, r });
      if (this.o.__testOnly_clearMeta) {
        // The broken defence (tests only): the v1 layout, camera and times in the clear header.
        const json = canonicalBytes({ ...header, ...meta });
        return { header, bytes: concat(CLIP_MAGIC, u32be(json.length), json) };
      }
      // Decode our own output: whatever we sign, a reader can parse (limits, consistency).
      const bytes = encodeClipHeader(header);
      decodeClipHeader(bytes);
      return { header, bytes };
    } finally {
      wipe(contentKey);
    }
  }
}

/**
 * Opens one blob's chunks as their bytes arrive: `push` any slices of the frames (after the
 * header), get the plaintext chunks that completed. E_CLIP_CHUNK for a chunk that does not
 * authenticate at its place or data after the last, E_CLIP_DIGEST when the chunks are not those the
 * device signed, E_CLIP_TRUNCATED from `finish` when the last chunk never came.
 */
export class BlobOpener {
  private pending: Uint8Array = new Uint8Array(0);
  private plaintextBytes = 0;
  private failed: Error | undefined;
  private confirmed = false;
  private constructor(
    readonly header: VerifiedClipHeader,
    /** The opened metadata box: camera name and exact times. */
    readonly meta: ClipMeta,
    private readonly stream: StreamOpener,
  ) {}

  /**
   * An opener for a verified header and its unwrapped content key (wiped after use). Opens the
   * metadata box first (E_DECRYPT, E_CLIP_HEADER) and, when `o.camera` is set, compares the camera
   * name in constant time (E_BAD_BINDING).
   */
  static async create(
    header: VerifiedClipHeader,
    contentKey: Uint8Array,
    o: { camera?: string; aead?: ChunkAead } = {},
  ): Promise<BlobOpener> {
    try {
      const salt = fromB64u(header.salt, 16);
      const meta = await openClipMeta(contentKey, salt, header.m, clipMetaAad(header), header.hr);
      if (o.camera !== undefined && !constantTimeEqual(utf8(meta.cam), utf8(o.camera)))
        throw new VerificationError('E_BAD_BINDING', 'clip: for another camera');
      const stream = await StreamOpener.create(contentKey, salt, header.cs, header.n, o.aead);
      return new BlobOpener(header, meta, stream);
    } finally {
      wipe(contentKey);
    }
  }

  /** True once the last chunk opened and the digest matched. */
  get done(): boolean {
    return this.confirmed;
  }

  /** Feed bytes of the frames; returns the plaintext chunks completed by them, in order. */
  async push(bytes: Uint8Array): Promise<Uint8Array[]> {
    if (this.failed) throw this.failed;
    try {
      return await this.pushInner(bytes);
    } catch (e) {
      this.failed = e as Error;
      throw e;
    }
  }

  private async pushInner(bytes: Uint8Array): Promise<Uint8Array[]> {
    if (this.confirmed) {
      if (bytes.length > 0) throw new VerificationError('E_CLIP_CHUNK', 'clip: data after the last chunk');
      return [];
    }
    // The buffer never holds more than one frame and its length prefix.
    let buf = this.pending.length ? concat(this.pending, bytes) : bytes;
    const out: Uint8Array[] = [];
    const maxFrame = this.header.cs + CLIP_TAG_BYTES;
    while (buf.length >= 4) {
      const len = new DataView(buf.buffer, buf.byteOffset, 4).getUint32(0, false);
      if (len < CLIP_TAG_BYTES || len > maxFrame)
        throw new VerificationError(
          'E_CLIP_CHUNK',
          `clip: chunk ${this.stream.opened} has an impossible length`,
        );
      if (buf.length < 4 + len) break;
      const ct = buf.subarray(4, 4 + len);
      buf = buf.subarray(4 + len);
      const pt = await this.stream.open(ct);
      this.plaintextBytes += pt.length;
      if (this.stream.finished) {
        await this.confirm();
        if (buf.length > 0) throw new VerificationError('E_CLIP_CHUNK', 'clip: data after the last chunk');
      }
      out.push(pt);
    }
    this.pending = buf.slice();
    return out;
  }

  private async confirm(): Promise<void> {
    const dg = await this.stream.chunkDigest();
    if (!constantTimeEqual(dg, fromB64u(this.header.dg, 32)) || this.plaintextBytes !== this.header.len)
      throw new VerificationError('E_CLIP_DIGEST', 'clip: the chunks are not the ones the device signed');
    this.confirmed = true;
  }

  /** The end of the data: E_CLIP_TRUNCATED unless the last chunk opened and matched the digest. */
  finish(): void {
    if (this.failed) throw this.failed;
    if (!this.confirmed)
      throw new VerificationError(
        'E_CLIP_TRUNCATED',
        `clip: ${this.stream.opened} of ${this.header.n} chunks, the last is missing`,
      );
  }
}

/**
 * Read, verify and unwrap a blob's header: the first step of a viewer. `bytes` starts with the
 * header (more may follow: the returned `size` says where the frames start).
 */
export async function openBlobHeader(
  bytes: Uint8Array,
  o: BlobOpenOptions,
): Promise<{ opener: BlobOpener; meta: ClipMeta; size: number }> {
  const { header, size } = decodeClipHeader(bytes);
  const verified = await verifyClipHeader(header, o);
  const key = await unwrapContentKey(verified, o.reader);
  const opener = await BlobOpener.create(verified, key, o);
  return { opener, meta: opener.meta, size };
}

/** Whole-buffer convenience: seal `plaintext` into one blob (header ‖ frames). */
export async function sealBlob(
  o: BlobSealOptions & { t1: number; plaintext: Uint8Array },
): Promise<{ blob: Uint8Array; header: ClipHeader }> {
  const sealer = await BlobSealer.create(o);
  const cs = sealer.maxChunkBytes;
  const frames: Promise<Uint8Array>[] = [];
  const n = Math.max(1, Math.ceil(o.plaintext.length / cs));
  for (let i = 0; i < n; i++)
    frames.push(sealer.sealChunk(o.plaintext.subarray(i * cs, (i + 1) * cs), i === n - 1));
  const body = await Promise.all(frames);
  const { header, bytes } = await sealer.finish({ t1: o.t1 });
  return { blob: concat(bytes, ...body), header };
}

/** Whole-buffer convenience: verify, unwrap and open a blob; the plaintext only if all of it checks out. */
export async function openBlob(
  blob: Uint8Array,
  o: BlobOpenOptions,
): Promise<{ header: VerifiedClipHeader; meta: ClipMeta; plaintext: Uint8Array }> {
  const { opener, size } = await openBlobHeader(blob, o);
  const chunks = await opener.push(blob.subarray(size));
  opener.finish();
  return { header: opener.header, meta: opener.meta, plaintext: concat(...chunks) };
}
