/**
 * The sealed device ⇄ viewer channel (threat model S4, S5, S8): every message between a paired
 * viewer and a device, except the pre-pairing `pair/*` PAKE messages, is encrypted and
 * authenticated end to end to the keys pinned at pairing. The rendezvous server routes opaque
 * `chan/*` frames: it learns who talks to whom, when and how much, never what.
 *
 * Handshake (SIGMA-I style, signed ephemeral X25519, two messages):
 *
 * ```
 * viewer (key V, pinned device key D)                     device (key D)
 *   chan/hello {env}  env = seal_V('chan/hello', {c, d, e: Ev})  (envelope: V's key, nonce, time)
 *   ------------------------------------------------------------>  verify: signature by V, fresh,
 *                                                                   nonce unused, d = our ID,
 *                                                                   V = the sender the server
 *                                                                   authenticated
 *   chan/accept {env}  env = seal_D('chan/accept', {c, d, vk: V, e: Ed, h: H(hello)})
 *   <------------------------------------------------------------
 *   verify: signed by the pinned D (else E_WRONG_SIGNER), fresh, c/d/vk ours, h = H(our hello)
 *
 *   th     = SHA-256("hearth/v1/chan/transcript" ‖ lp(digest-input(hello)) ‖ lp(digest-input(accept)))
 *   ss     = X25519(ev, Ed) = X25519(ed, Ev)
 *   k_v2d  = HKDF-SHA-256(ss, salt = th, info = "hearth/v1/chan/viewer-to-device", 32)
 *   k_d2v  = HKDF-SHA-256(ss, salt = th, info = "hearth/v1/chan/device-to-viewer", 32)
 *
 *   chan/msg {c, n, ct}   ct  = AES-256-GCM(k_dir, nonce = 0^32 ‖ u64be(n), canonical JSON(m), aad)
 *                         aad = "hearth/v1/chan/msg" ‖ lp(dir) ‖ lp(c) ‖ u64be(n)
 * ```
 *
 * `c` is 16 random bytes chosen by the viewer; `n` counts from 1 in each direction; a message whose
 * `n` is not greater than the last one accepted in its direction is refused (E_REPLAY): replay and
 * reordering are caught (the rendezvous path delivers in order). A new connection or a restart on
 * either side means a new channel: the device answers a `chan/msg` for a channel it does not know
 * with `chan/reset {c}`, and the viewer starts a new handshake. `chan/reset` and `chan/refused`
 * are not authenticated: a server can forge them, which costs a handshake, as dropping frames
 * would. The device accepts a handshake from any viewer key that proves itself; what that key may
 * do is decided per message against the ACL, and a stranger's refusal is sealed too.
 *
 * Offers and answers keep their own signed envelopes inside the channel (defence in depth: the
 * channel key and the DTLS fingerprint are bound by two independent signatures).
 *
 * This module is pure: {@link ViewerChannels} and {@link DeviceChannels} hold the state and are fed
 * bytes by the agent and the viewer; they send through an injected function.
 */
import { z } from 'zod';
import { b64u, concat, fromB64u, fromUtf8, lp, utf8 } from './bytes.js';
import { canonicalBytes, parseJson } from './canonical.js';
import type { CryptoEnv } from './crypto/env.js';
import {
  aesGcmDecrypt,
  aesGcmEncrypt,
  hkdfSha256,
  info,
  label,
  type Signer,
  sha256,
  type X25519KeyPair,
  x25519,
  x25519Generate,
} from './crypto/primitives.js';
import { decodeEnvelope, describeZod, type Envelope, envelopeDigestInput, seal, verify } from './envelope.js';
import { HearthError, ProtocolError, VerificationError } from './errors.js';
import { deviceIdFromKey, encodeId, isId } from './ids.js';
import {
  type DeviceMessage,
  decodeDeviceMessage,
  decodeViewerMessage,
  MAX_MESSAGE_BYTES,
  type ViewerMessage,
} from './messages.js';
import { MemoryReplayCache, type ReplayCache } from './replay.js';

/** Purpose labels of the channel (HKDF info, hash and AAD prefixes; envelope purposes). */
export const CHANNEL_LABELS = {
  hello: 'chan/hello',
  accept: 'chan/accept',
  transcript: 'chan/transcript',
  viewerToDevice: 'chan/viewer-to-device',
  deviceToViewer: 'chan/device-to-viewer',
  msg: 'chan/msg',
} as const;

/** Direction of a sealed message. */
export type ChannelDirection = 'v2d' | 'd2v';

/** Largest `ct` of a `chan/msg` (b64u of the largest message and its tag). */
export const MAX_CHANNEL_CT_CHARS = Math.ceil(((MAX_MESSAGE_BYTES + 16) * 4) / 3);
/** How old (or how far ahead) a hello or an accept may be. */
export const CHANNEL_MAX_AGE_MS = 60_000;
export const CHANNEL_MAX_FUTURE_MS = 30_000;

const b64 = (n: number) => z.string().regex(new RegExp(`^[A-Za-z0-9_-]{${n}}$`));
const chanId = b64(22);
const x25519Key = b64(43);
const deviceIdText = z.string().refine((s): boolean => isId('deviceId', s), 'device id');
const userKeyText = z.string().refine((s): boolean => isId('userKey', s), 'user key');
const envField = z.record(z.string(), z.unknown());

/** Body of the `chan/hello` envelope (signed by the viewer). */
export const helloBodySchema = z.object({ c: chanId, d: deviceIdText, e: x25519Key }).strict();
/** Body of the `chan/accept` envelope (signed by the device). */
export const acceptBodySchema = z
  .object({ c: chanId, d: deviceIdText, vk: userKeyText, e: x25519Key, h: b64(43) })
  .strict();

/** The channel's frames, carried as `m` by the rendezvous. */
export const channelFrameSchema = z.discriminatedUnion('t', [
  z.object({ t: z.literal('chan/hello'), env: envField }).strict(),
  z.object({ t: z.literal('chan/accept'), env: envField }).strict(),
  z
    .object({
      t: z.literal('chan/msg'),
      c: chanId,
      n: z.number().int().positive().max(Number.MAX_SAFE_INTEGER),
      ct: z
        .string()
        .min(22)
        .max(MAX_CHANNEL_CT_CHARS)
        .regex(/^[A-Za-z0-9_-]*$/),
    })
    .strict(),
  z.object({ t: z.literal('chan/reset'), c: chanId }).strict(),
  z
    .object({
      t: z.literal('chan/refused'),
      c: z.union([chanId, z.literal('')]),
      code: z.string().regex(/^[A-Z0-9_]{1,64}$/),
    })
    .strict(),
]);
export type ChannelFrame = z.infer<typeof channelFrameSchema>;
export type ChannelMsgFrame = Extract<ChannelFrame, { t: 'chan/msg' }>;

/** What a rendezvous `m` is, before any key is used. */
export type RoutedMessage =
  | { kind: 'pair'; m: { t: string; [k: string]: unknown } }
  | { kind: 'chan'; m: ChannelFrame }
  | { kind: 'plain'; m: { t: string; [k: string]: unknown } }
  | { kind: 'invalid'; error: ProtocolError };

/** Classify a routed `m` (size-limited by the rendezvous frame). Never throws. */
export function decodeRouted(m: unknown): RoutedMessage {
  if (typeof m !== 'object' || m === null || Array.isArray(m))
    return { kind: 'invalid', error: new ProtocolError('E_SCHEMA', 'routed message is not an object') };
  const t = (m as { t?: unknown }).t;
  if (typeof t !== 'string' || t.length > 64)
    return { kind: 'invalid', error: new ProtocolError('E_SCHEMA', 'routed message has no type') };
  if (t.startsWith('pair/')) return { kind: 'pair', m: m as { t: string } };
  if (t.startsWith('chan/')) {
    const r = channelFrameSchema.safeParse(m);
    if (!r.success)
      return { kind: 'invalid', error: new ProtocolError('E_SCHEMA', `${t}: ${describeZod(r.error)}`) };
    return { kind: 'chan', m: r.data };
  }
  return { kind: 'plain', m: m as { t: string } };
}

// ---------------------------------------------------------------- the sealed channel

function nonceOf(n: number): Uint8Array {
  const iv = new Uint8Array(12);
  new DataView(iv.buffer).setBigUint64(4, BigInt(n));
  return iv;
}

function aadOf(dir: ChannelDirection, c: string, n: number): Uint8Array {
  const ctr = new Uint8Array(8);
  new DataView(ctr.buffer).setBigUint64(0, BigInt(n));
  return concat(utf8(label(CHANNEL_LABELS.msg)), lp(utf8(dir)), lp(utf8(c)), ctr);
}

/**
 * One established channel: seals outgoing and opens incoming messages in order. Opens and seals
 * are serialized, so counters leave and are accepted in order even though WebCrypto is async.
 */
export class SealedChannel {
  private sendN = 0;
  private recvN = 0;
  private chain: Promise<unknown> = Promise.resolve();

  constructor(
    /** Channel id (b64u, 16 bytes). */
    readonly id: string,
    /** Which side we are. */
    readonly side: 'viewer' | 'device',
    private readonly sendKey: Uint8Array,
    private readonly recvKey: Uint8Array,
    /** Transcript hash (b64u), for tests and logs (not secret). */
    readonly transcript: string,
  ) {}

  private get sendDir(): ChannelDirection {
    return this.side === 'viewer' ? 'v2d' : 'd2v';
  }
  private get recvDir(): ChannelDirection {
    return this.side === 'viewer' ? 'd2v' : 'v2d';
  }

  private serial<T>(f: () => Promise<T>): Promise<T> {
    const p = this.chain.then(f, f);
    this.chain = p.catch(() => undefined);
    return p;
  }

  /** Seal `m` (a device⇄viewer message) into a `chan/msg` frame. Rejects (never throws) with ProtocolError E_TOO_LARGE or E_SCHEMA. */
  seal(m: unknown): Promise<ChannelMsgFrame> {
    let pt: Uint8Array;
    try {
      pt = canonicalBytes(m);
    } catch {
      return Promise.reject(new ProtocolError('E_SCHEMA', 'message outside canonical JSON'));
    }
    if (pt.length > MAX_MESSAGE_BYTES)
      return Promise.reject(new ProtocolError('E_TOO_LARGE', `message larger than ${MAX_MESSAGE_BYTES}`));
    const n = ++this.sendN;
    return this.serial(async () => {
      const ct = await aesGcmEncrypt(this.sendKey, nonceOf(n), pt, aadOf(this.sendDir, this.id, n));
      return { t: 'chan/msg' as const, c: this.id, n, ct: b64u(ct) };
    });
  }

  /**
   * Open a `chan/msg` of this channel. Resolves with the parsed JSON plaintext (to be decoded with
   * the direction's decoder), or rejects with VerificationError E_DECRYPT (tampered, wrong key or
   * direction), E_REPLAY (counter not greater than the last accepted one) or ProtocolError.
   */
  open(f: ChannelMsgFrame): Promise<unknown> {
    return this.serial(async () => {
      if (f.c !== this.id) throw new VerificationError('E_BAD_BINDING', 'message of another channel');
      if (f.n <= this.recvN)
        throw new VerificationError('E_REPLAY', 'channel counter not greater than the last accepted');
      const ct = fromB64u(f.ct, MAX_MESSAGE_BYTES + 16);
      const pt = await aesGcmDecrypt(this.recvKey, nonceOf(f.n), ct, aadOf(this.recvDir, this.id, f.n));
      this.recvN = f.n; // only an authentic message moves the window
      return parseJson(fromUtf8(pt), MAX_MESSAGE_BYTES);
    });
  }
}

async function transcriptHash(hello: Envelope, accept: Envelope): Promise<Uint8Array> {
  return sha256(
    concat(
      utf8(label(CHANNEL_LABELS.transcript)),
      lp(envelopeDigestInput(hello)),
      lp(envelopeDigestInput(accept)),
    ),
  );
}

async function deriveKeys(shared: Uint8Array, th: Uint8Array): Promise<{ v2d: Uint8Array; d2v: Uint8Array }> {
  return {
    v2d: await hkdfSha256(shared, th, info(CHANNEL_LABELS.viewerToDevice), 32),
    d2v: await hkdfSha256(shared, th, info(CHANNEL_LABELS.deviceToViewer), 32),
  };
}

/** The viewer's half-open handshake. */
export interface PendingHello {
  id: string;
  deviceId: string;
  hello: Envelope;
  helloDigest: string;
  eph: X25519KeyPair;
}

/** Viewer: start a handshake with `deviceId`. Send `{t: 'chan/hello', env: hello}`. */
export async function createHello(
  viewer: Signer,
  deviceId: string,
  env: CryptoEnv,
  eph?: X25519KeyPair,
): Promise<PendingHello> {
  const e = eph ?? (await x25519Generate());
  const id = b64u(env.random(16));
  const hello = await seal(viewer, 'user', 'chan/hello', { c: id, d: deviceId, e: b64u(e.publicKey) }, env);
  return { id, deviceId, hello, helloDigest: b64u(await sha256(envelopeDigestInput(hello))), eph: e };
}

type Result<T> = { ok: true; value: T } | { ok: false; error: VerificationError | ProtocolError };

function fail<T>(e: unknown): Result<T> {
  if (e instanceof VerificationError || e instanceof ProtocolError) return { ok: false, error: e };
  return { ok: false, error: new ProtocolError('E_DECODE', 'channel handshake input') };
}

/**
 * Device: answer a hello. `from` is the sender the server authenticated; it must be the key that
 * signed. Returns the accept envelope to send and the established channel.
 */
export async function acceptHello(
  raw: unknown,
  o: {
    device: Signer;
    deviceId: string;
    from: string;
    env: CryptoEnv;
    replay?: ReplayCache;
    eph?: X25519KeyPair;
  },
): Promise<Result<{ accept: Envelope; channel: SealedChannel; viewerKey: string }>> {
  try {
    const hello = decodeEnvelope(raw);
    const r = await verify(hello, {
      purpose: 'chan/hello',
      signerKind: 'user',
      body: helloBodySchema,
      now: o.env.now(),
      maxAgeMs: CHANNEL_MAX_AGE_MS,
      maxFutureMs: CHANNEL_MAX_FUTURE_MS,
      ...(o.replay ? { replay: o.replay } : {}),
    });
    if (!r.ok) return r;
    if (r.body.d !== o.deviceId) throw new VerificationError('E_BAD_BINDING', 'hello is for another device');
    if (r.signerText !== o.from)
      throw new VerificationError('E_BAD_BINDING', 'hello signed by a key other than its sender');
    const viewerEph = fromB64u(r.body.e, 32);
    const eph = o.eph ?? (await x25519Generate());
    const shared = await x25519(eph.privateKey, viewerEph);
    const accept = await seal(
      o.device,
      'device',
      'chan/accept',
      {
        c: r.body.c,
        d: o.deviceId,
        vk: r.signerText,
        e: b64u(eph.publicKey),
        h: b64u(await sha256(envelopeDigestInput(hello))),
      },
      o.env,
    );
    const th = await transcriptHash(hello, accept);
    const k = await deriveKeys(shared, th);
    shared.fill(0);
    return {
      ok: true,
      value: {
        accept,
        channel: new SealedChannel(r.body.c, 'device', k.d2v, k.v2d, b64u(th)),
        viewerKey: r.signerText,
      },
    };
  } catch (e) {
    return fail(e);
  }
}

/** Viewer: check the device's accept against the pinned device key and our hello. */
export async function completeHandshake(
  raw: unknown,
  o: { pending: PendingHello; viewerKey: string; pinnedDeviceKey: Uint8Array; now: number },
): Promise<Result<SealedChannel>> {
  try {
    const accept = decodeEnvelope(raw);
    const r = await verify(accept, {
      purpose: 'chan/accept',
      signerKind: 'device',
      expectedSigner: o.pinnedDeviceKey,
      body: acceptBodySchema,
      now: o.now,
      maxAgeMs: CHANNEL_MAX_AGE_MS,
      maxFutureMs: CHANNEL_MAX_FUTURE_MS,
    });
    if (!r.ok) return r;
    const b = r.body;
    if (b.d !== deviceIdFromKey(o.pinnedDeviceKey) || b.d !== o.pending.deviceId)
      throw new VerificationError('E_BAD_BINDING', 'accept names another device');
    if (b.c !== o.pending.id || b.vk !== o.viewerKey || b.h !== o.pending.helloDigest)
      throw new VerificationError('E_BAD_BINDING', 'accept is not bound to our hello');
    const shared = await x25519(o.pending.eph.privateKey, fromB64u(b.e, 32));
    const th = await transcriptHash(o.pending.hello, accept);
    const k = await deriveKeys(shared, th);
    shared.fill(0);
    return { ok: true, value: new SealedChannel(b.c, 'viewer', k.v2d, k.d2v, b64u(th)) };
  } catch (e) {
    return fail(e);
  }
}

// ---------------------------------------------------------------- the two ends

/** Sends `m` to a peer through the rendezvous; false when it could not be sent. */
export type RouteFn = (to: string, m: unknown) => boolean;

/** What a routed message turned out to be, on the viewer. */
export type ViewerInbound =
  | { kind: 'pair'; m: { t: string; [k: string]: unknown } }
  | { kind: 'message'; m: DeviceMessage }
  /** A channel frame that needed nothing more (handshake done, unknown channel, reset). */
  | { kind: 'handled'; event?: 'established' | 'reset' | 'refused'; code?: string }
  /** Dropped. `attack`: a check by the pinned key failed (show it as a possible attack). */
  | { kind: 'rejected'; error: HearthError; attack: boolean };

/** What a routed message turned out to be, on the device. */
export type DeviceInbound =
  | { kind: 'pair'; m: { t: string; [k: string]: unknown } }
  | { kind: 'message'; m: ViewerMessage; channel: string }
  | { kind: 'handled' }
  | { kind: 'rejected'; error: HearthError; attack: boolean };

const isAttack = (e: HearthError) => e instanceof VerificationError;

/** Options of {@link ViewerChannels}. */
export interface ViewerChannelsOptions {
  signer: Signer;
  env: CryptoEnv;
  /** The device key pinned at pairing, or undefined for a device we never paired with. */
  pinned(deviceId: string): Uint8Array | undefined;
  route: RouteFn;
  /** A handshake without an accept for this long is abandoned at the next send (ms). Default 15 s. */
  handshakeMs?: number;
  /**
   * TEST ONLY: send and accept device messages in clear, as before the channel existed. The
   * control of the server-dump test; never set in a product build (the agent refuses clear
   * messages unless it too was started with its own test switch).
   */
  unsealedForTests?: boolean;
}

interface ViewerSlot {
  pending?: PendingHello & { at: number };
  channel?: SealedChannel;
  queue: unknown[];
}

/** A clear message where only sealed ones are accepted: dropped with a clear error, not an attack. */
function outsideChannel(t: string): { kind: 'rejected'; error: ProtocolError; attack: false } {
  return {
    kind: 'rejected',
    error: new ProtocolError('E_SCHEMA', `${t} outside the sealed channel`),
    attack: false,
  };
}

/**
 * The viewer's channels, one per paired device: {@link send} seals (starting a handshake and
 * queueing until it completes), {@link receive} opens. Drop a device's channel with {@link reset}
 * whenever the rendezvous connection or the device's presence changes.
 */
export class ViewerChannels {
  private readonly slots = new Map<string, ViewerSlot>();
  private readonly me: string;

  constructor(private readonly o: ViewerChannelsOptions) {
    this.me = encodeId('userKey', o.signer.publicKey);
  }

  /** True once a channel to `deviceId` is established. */
  established(deviceId: string): boolean {
    return this.slots.get(deviceId)?.channel !== undefined;
  }

  /** Forget the channel to `deviceId` (or every channel). Queued messages are dropped. */
  reset(deviceId?: string): void {
    if (deviceId === undefined) this.slots.clear();
    else this.slots.delete(deviceId);
  }

  /**
   * Send a message to a device: sealed on its channel, or queued while the handshake runs (at most
   * 64). Returns false when the rendezvous is down or the device is not paired.
   */
  send(deviceId: string, m: ViewerMessage | { t: string; [k: string]: unknown }): boolean {
    if (m.t.startsWith('pair/')) return this.o.route(deviceId, m);
    if (this.o.unsealedForTests) return this.o.route(deviceId, m);
    if (!this.o.pinned(deviceId)) return false;
    let slot = this.slots.get(deviceId);
    const now = this.o.env.now();
    if (slot && !slot.channel && slot.pending && now - slot.pending.at > (this.o.handshakeMs ?? 15_000)) {
      this.slots.delete(deviceId);
      slot = undefined;
    }
    if (slot?.channel) {
      const ch = slot.channel;
      void ch.seal(m).then(
        (f) => {
          if (this.slots.get(deviceId)?.channel === ch) this.o.route(deviceId, f);
        },
        () => undefined,
      );
      return true;
    }
    if (!slot) {
      slot = { queue: [] };
      this.slots.set(deviceId, slot);
      const s = slot;
      void createHello(this.o.signer, deviceId, this.o.env).then(
        (p) => {
          if (this.slots.get(deviceId) !== s) return;
          s.pending = { ...p, at: this.o.env.now() };
          if (!this.o.route(deviceId, { t: 'chan/hello', env: p.hello })) this.slots.delete(deviceId);
        },
        () => this.slots.delete(deviceId),
      );
    }
    if (slot.queue.length >= 64) return false;
    slot.queue.push(m);
    return true;
  }

  /** Feed a routed `m` from `from`. Never rejects. */
  async receive(from: string, raw: unknown): Promise<ViewerInbound> {
    const r = decodeRouted(raw);
    if (r.kind === 'invalid') return { kind: 'rejected', error: r.error, attack: false };
    if (r.kind === 'pair') return r;
    if (r.kind === 'plain') {
      if (!this.o.unsealedForTests) return outsideChannel(r.m.t);
      const d = decodeDeviceMessage(r.m);
      return d.ok ? { kind: 'message', m: d.m } : { kind: 'rejected', error: d.error, attack: false };
    }
    const pinned = this.o.pinned(from);
    if (!pinned)
      return {
        kind: 'rejected',
        error: new ProtocolError('E_BAD_STATE', 'not a paired device'),
        attack: false,
      };
    const slot = this.slots.get(from);
    const f = r.m;
    switch (f.t) {
      case 'chan/accept': {
        const p = slot?.pending;
        if (!slot || !p || slot.channel)
          return { kind: 'rejected', error: new ProtocolError('E_BAD_STATE', 'no handshake'), attack: false };
        const done = await completeHandshake(f.env, {
          pending: p,
          viewerKey: this.me,
          pinnedDeviceKey: pinned,
          now: this.o.env.now(),
        });
        if (this.slots.get(from) !== slot || slot.channel) return { kind: 'handled' };
        if (!done.ok) {
          // The caller shows it; the next send starts a new handshake (queued messages are dropped).
          this.slots.delete(from);
          return { kind: 'rejected', error: done.error, attack: isAttack(done.error) };
        }
        const ch = done.value;
        slot.channel = ch;
        delete slot.pending;
        for (const m of slot.queue.splice(0))
          void ch.seal(m).then(
            (fr) => {
              if (this.slots.get(from)?.channel === ch) this.o.route(from, fr);
            },
            () => undefined,
          );
        return { kind: 'handled', event: 'established' };
      }
      case 'chan/msg': {
        const ch = slot?.channel;
        if (!ch || ch.id !== f.c) return { kind: 'handled' }; // another tab's channel, or an old one
        try {
          const d = decodeDeviceMessage(await ch.open(f));
          return d.ok ? { kind: 'message', m: d.m } : { kind: 'rejected', error: d.error, attack: false };
        } catch (e) {
          const err = e instanceof HearthError ? e : new ProtocolError('E_DECODE', 'channel message');
          return { kind: 'rejected', error: err, attack: isAttack(err) };
        }
      }
      case 'chan/reset':
      case 'chan/refused': {
        const id = slot?.channel?.id ?? slot?.pending?.id;
        if (slot && id === f.c) this.slots.delete(from);
        return f.t === 'chan/reset'
          ? { kind: 'handled', event: 'reset' }
          : { kind: 'handled', event: 'refused', code: f.code };
      }
      default:
        return {
          kind: 'rejected',
          error: new ProtocolError('E_BAD_STATE', `${f.t} is not for a viewer`),
          attack: false,
        };
    }
  }
}

/** Options of {@link DeviceChannels}. */
export interface DeviceChannelsOptions {
  signer: Signer;
  deviceId: string;
  env: CryptoEnv;
  route: RouteFn;
  /** Channels kept per viewer key (several tabs, reconnects). Default 8; the oldest goes. */
  maxPerViewer?: number;
  /** Channels kept in all. Default 512; the least recently used goes. */
  maxChannels?: number;
  /** TEST ONLY: accept and send viewer messages in clear. See {@link ViewerChannelsOptions}. */
  unsealedForTests?: boolean;
  /**
   * When this device process started (ms, default: when this object was made). A hello stamped
   * earlier is refused with E_RESTARTED: the replay cache is in memory, so a hello recorded before
   * a restart could otherwise be replayed to the new process, as offers could (review R4).
   */
  startedAt?: number;
}

interface DeviceSlot {
  viewer: string;
  channel: SealedChannel;
}

/**
 * The device's channels, by channel id: {@link receive} answers hellos and opens messages,
 * {@link send} seals a reply on the channel it names (or the viewer's most recent one).
 */
export class DeviceChannels {
  /** Insertion order = least recently used first. */
  private readonly byId = new Map<string, DeviceSlot>();
  private readonly replay = new MemoryReplayCache(50_000, 5 * 60_000);
  /** The seals `send` started, in order (see {@link flushed}). */
  private inflight: Promise<void> = Promise.resolve();
  private readonly startedAt: number;

  constructor(private readonly o: DeviceChannelsOptions) {
    this.startedAt = o.startedAt ?? o.env.now();
  }

  /** Number of channels held. */
  get size(): number {
    return this.byId.size;
  }

  /** Drop every channel (e.g. the rendezvous connection was re-established). */
  clear(): void {
    this.byId.clear();
  }

  /**
   * Seal `m` to viewer `to`, on `channel` if given and still open, else on the viewer's most
   * recently used channel. False when there is none (the viewer must say hello first).
   */
  send(to: string, m: DeviceMessage, channel?: string): boolean {
    if (this.o.unsealedForTests) return this.o.route(to, m);
    let slot = channel ? this.byId.get(channel) : undefined;
    if (slot && slot.viewer !== to) slot = undefined;
    if (!slot) for (const s of this.byId.values()) if (s.viewer === to) slot = s; // the last is the newest
    if (!slot) return false;
    const ch = slot.channel;
    const out = ch.seal(m).then(
      (f) => {
        this.o.route(to, f);
      },
      () => undefined,
    );
    this.inflight = this.inflight.then(() => out);
    return true;
  }

  /**
   * Settles once every message `send` accepted so far was sealed and handed to the route (sealing
   * is asynchronous): what is sent on the same route after this is behind them.
   */
  flushed(): Promise<void> {
    return this.inflight;
  }

  private touch(id: string, slot: DeviceSlot): void {
    this.byId.delete(id);
    this.byId.set(id, slot);
  }

  private add(id: string, slot: DeviceSlot): void {
    this.byId.delete(id);
    const mine = [...this.byId].filter(([, s]) => s.viewer === slot.viewer);
    for (const [k] of mine.slice(0, Math.max(0, mine.length - (this.o.maxPerViewer ?? 8) + 1)))
      this.byId.delete(k);
    while (this.byId.size >= (this.o.maxChannels ?? 512))
      this.byId.delete(this.byId.keys().next().value as string);
    this.byId.set(id, slot);
  }

  /** Feed a routed `m` from `from` (the server-authenticated sender). Never rejects. */
  async receive(from: string, raw: unknown): Promise<DeviceInbound> {
    const r = decodeRouted(raw);
    if (r.kind === 'invalid') return { kind: 'rejected', error: r.error, attack: false };
    if (r.kind === 'pair') return r;
    if (r.kind === 'plain') {
      if (!this.o.unsealedForTests) return outsideChannel(r.m.t);
      const d = decodeViewerMessage(r.m);
      return d.ok
        ? { kind: 'message', m: d.m, channel: '' }
        : { kind: 'rejected', error: d.error, attack: false };
    }
    const f = r.m;
    switch (f.t) {
      case 'chan/hello': {
        const cOf = () => {
          const c = typeof f.env.b === 'object' && f.env.b ? (f.env.b as { c?: unknown }).c : undefined;
          return typeof c === 'string' && /^[A-Za-z0-9_-]{22}$/.test(c) ? c : '';
        };
        if (typeof f.env.t === 'number' && f.env.t < this.startedAt) {
          // Made before this process started: a replay of a recorded hello (or a very slow clock).
          this.o.route(from, { t: 'chan/refused', c: cOf(), code: 'E_RESTARTED' });
          const err = new ProtocolError('E_RESTARTED', 'hello made before the device started');
          return { kind: 'rejected', error: err, attack: false };
        }
        const a = await acceptHello(f.env, {
          device: this.o.signer,
          deviceId: this.o.deviceId,
          from,
          env: this.o.env,
          replay: this.replay,
        });
        if (!a.ok) {
          this.o.route(from, { t: 'chan/refused', c: cOf(), code: a.error.code });
          return { kind: 'rejected', error: a.error, attack: isAttack(a.error) };
        }
        this.add(a.value.channel.id, { viewer: from, channel: a.value.channel });
        this.o.route(from, { t: 'chan/accept', env: a.value.accept });
        return { kind: 'handled' };
      }
      case 'chan/msg': {
        const slot = this.byId.get(f.c);
        if (!slot || slot.viewer !== from) {
          // A channel from before a restart (or another viewer's id): ask for a new handshake.
          this.o.route(from, { t: 'chan/reset', c: f.c });
          return { kind: 'handled' };
        }
        this.touch(f.c, slot);
        try {
          const d = decodeViewerMessage(await slot.channel.open(f));
          return d.ok
            ? { kind: 'message', m: d.m, channel: f.c }
            : { kind: 'rejected', error: d.error, attack: false };
        } catch (e) {
          const err = e instanceof HearthError ? e : new ProtocolError('E_DECODE', 'channel message');
          if (err.code === 'E_DECRYPT') {
            // Not sealed with this channel's key: the viewer holds other keys for this id (a hello
            // of its replayed to us, say). Drop the channel and ask for a new handshake, or the
            // viewer would talk into it for ever; the failure is still reported.
            this.byId.delete(f.c);
            this.o.route(from, { t: 'chan/reset', c: f.c });
          }
          return { kind: 'rejected', error: err, attack: isAttack(err) };
        }
      }
      default:
        return {
          kind: 'rejected',
          error: new ProtocolError('E_BAD_STATE', `${f.t} is not for a device`),
          attack: false,
        };
    }
  }
}
