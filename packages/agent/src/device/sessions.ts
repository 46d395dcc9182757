/**
 * The device's authority over live sessions (threat model S4, S6, S12): verify the viewer's
 * signed offer, ask the ACL, answer with a device-signed SDP, and close sessions whose grant is
 * gone — on revocation at once, on expiry within {@link SessionManager.sweepMs}.
 */
import {
  type Acl,
  type CryptoEnv,
  checkReplay,
  createAnswer,
  createStillSealer,
  decodeEnvelope,
  type ErrorCode,
  HearthError,
  type IceServer,
  isLogCode,
  isPossibleAttack,
  MemoryReplayCache,
  type ReplayCache,
  type Signer,
  type StillSealer,
  verifyOffer,
} from '@hearth/protocol';
import type { RetentionConfig } from '../events/config.js';
import type { EventRecording } from '../events/recorder.js';
import type { CameraEvent } from '../media/hub.js';
import { idHashOf, keyHashOf, type LogSink } from './access-log.js';

/**
 * What a viewer is told when the media layer cannot answer: the error's registered code (a
 * MediaError's is specific: camera offline or unavailable, no H.264, bad SDP…). An untyped throw
 * from the media layer (a bug there: every known cause has its code) is `E_MEDIA`.
 */
function refusalCode(e: unknown): ErrorCode {
  return e instanceof HearthError ? e.code : 'E_MEDIA';
}

/** What the agent needs from the media layer (implemented by media/MediaHub). */
export interface MediaBackend {
  /** Camera names and whether their source is currently producing frames. */
  cameras(): { name: string; online: boolean }[];
  /** Answer a browser's offer for `camera`; the returned SDP must carry the DTLS fingerprint. */
  createViewerSession(
    camera: string,
    offerSdp: string,
    opts: { iceServers: IceServer[]; sid?: string },
  ): Promise<{ answerSdp: string; session: MediaSession }>;
  /**
   * A JPEG of the camera's latest frame for the sealed still (`session/still`), or undefined.
   * Optional: without it the agent answers without `sk` and sends no still. Must never reject.
   */
  still?(camera: string): Promise<Uint8Array | undefined>;
  /**
   * Listen to the event recordings of cameras with `motion` (the agent seals them: events
   * pipeline). Optional: without it the agent records nothing. Returns the listener's removal.
   */
  onRecording?(listener: (r: EventRecording) => void): () => void;
  /** Camera events as they happen (motion start and end): the notifications. */
  onCameraEvent?(listener: (e: CameraEvent) => void): () => void;
  /** A camera's retention from the camera map (undefined: the defaults). */
  retention?(camera: string): RetentionConfig | undefined;
}

/** One viewer's media session (the media layer's single owner of it, named by the viewer's sid). */
export interface MediaSession {
  /** Close it; `code` is what the session was closed for (not sent by the media layer). */
  close(code?: string): void | Promise<void>;
  /** Trickled remote candidate (optional: non-trickle SDPs carry all candidates). */
  addIceCandidate?(c: unknown): Promise<void> | void;
  /**
   * Resolves when the session is closed, however that happened. With a code (the camera went
   * offline, the DTLS handshake failed), the viewer is told with `session/closed {sid, code}`.
   */
  readonly closed: Promise<string | undefined>;
  /**
   * Resolves once the media connected, with the network path of its selected ICE candidate pair
   * (the access log's `live/*` entries), or undefined when it closed first. A media layer without it
   * gets `live/start` at the answer, with path `direct`.
   */
  readonly connected?: Promise<'direct' | 'relayed' | undefined>;
}

/** An event the agent reports (to logs and the audit trail). */
export type SessionEvent =
  | { kind: 'session-opened'; viewer: string; camera: string; sid: string }
  | { kind: 'session-closed'; viewer: string; sid: string; reason: string }
  | { kind: 'session-refused'; viewer: string; code: string; attack: boolean }
  /** The media peer completed ICE but failed DTLS for the signed fingerprint: nothing was sent. */
  | { kind: 'media-attack'; viewer: string; sid: string; code: string }
  /** A validly signed offer stamped `skewMs` away from this device's clock (review R13). */
  | { kind: 'clock-skew'; viewer: string; skewMs: number };

interface Live {
  viewer: string;
  camera: string;
  sid: string;
  media: MediaSession;
  /** The path the media took, once it connected. */
  path?: 'direct' | 'relayed';
  /** `live/start` is in the log. */
  started?: boolean;
}

/** Sends a message to a peer through the rendezvous. */
export type Send = (to: string, m: unknown) => void;

/** Live sessions of one device. */
export class SessionManager {
  private readonly live = new Map<string, Live>();
  /** Candidates that trickle in while a session's answer is being prepared. */
  private readonly pending = new Map<string, unknown[]>();
  /** Offers the viewer closed while they were being answered. */
  private readonly cancelled = new Set<string>();
  /** Nonces of offers from keys that hold a grant (strangers never reach it: review R2). */
  private readonly replay: ReplayCache;
  /**
   * The device's clock when this manager started. An offer stamped before it is refused
   * (E_RESTARTED, review R4): the replay cache is in memory, so an offer answered before a
   * restart would otherwise be answered again. A viewer whose offer was in flight makes a new one.
   */
  readonly startedAt: number;
  private sweeper: NodeJS.Timeout | undefined;
  /** How often grants are re-checked for expiry. */
  readonly sweepMs: number;

  constructor(
    private readonly o: {
      deviceId: string;
      signer: Signer;
      env: CryptoEnv;
      media: MediaBackend;
      acl: () => Acl | undefined;
      send: Send;
      /**
       * ICE servers for a session with `viewer`; may wait (briefly) for relay credentials, which
       * the server issues only for a viewer this device answers (review R6).
       */
      iceServers: (viewer: string) => IceServer[] | Promise<IceServer[]>;
      onEvent?: (e: SessionEvent) => void;
      sweepMs?: number;
      /** The agent's start time on `env`'s clock (default: when this manager is made). */
      startedAt?: number;
      /** The offers' replay cache (default: in memory, 50 000 nonces, 5 min). */
      replay?: ReplayCache;
      /** The access log: `live/start` when a session is answered, `live/stop` when it ends. */
      log?: LogSink;
    },
  ) {
    this.sweepMs = o.sweepMs ?? 2_000;
    this.startedAt = o.startedAt ?? o.env.now();
    this.replay = o.replay ?? new MemoryReplayCache(50_000, 5 * 60_000);
    this.sweeper = setInterval(() => this.sweep(), this.sweepMs);
    this.sweeper.unref();
  }

  /** Number of live sessions. */
  get size(): number {
    return this.live.size;
  }

  /** Handle a `session/offer` message from `from` (the server-authenticated sender). */
  async onOffer(from: string, m: { env?: unknown; [k: string]: unknown }): Promise<void> {
    let sid = '';
    const refuse = (code: ErrorCode, attack: boolean) => {
      this.pending.delete(`${from}/${sid}`);
      this.cancelled.delete(`${from}/${sid}`);
      this.o.send(from, { t: 'session/refused', sid, code });
      this.o.onEvent?.({ kind: 'session-refused', viewer: from, code, attack });
    };
    let env: ReturnType<typeof decodeEnvelope>;
    try {
      env = decodeEnvelope(m.env);
      sid = typeof env.b.sid === 'string' && /^[A-Za-z0-9_-]{22}$/.test(env.b.sid) ? env.b.sid : '';
    } catch (e) {
      return refuse((e as HearthError).code ?? 'E_SCHEMA', false);
    }
    // Candidates the viewer trickles right after its offer are kept until the session exists
    // (and dropped if the offer is refused).
    const key = `${from}/${sid}`;
    if (sid && !this.live.has(key) && this.pending.size < 256) this.pending.set(key, []);
    // Verified without the replay cache: it is checked below, only for a key that holds a grant,
    // so a stranger's flood can neither fill it nor move its mark (review R2).
    const r = await verifyOffer(env, { deviceId: this.o.deviceId, now: this.o.env.now() });
    if (!r.ok && r.error.code === 'E_STALE') {
      // verify checks the signature before the time, so this offer is really signed by its key and
      // only stamped outside the window: a clock is off (no RTC, no NTP), told apart from a forgery
      // (review R13). Still refused: the server is not trusted to correct our time.
      const skewMs = env.t - this.o.env.now();
      refuse('E_CLOCK_SKEW', false);
      this.o.onEvent?.({ kind: 'clock-skew', viewer: from, skewMs });
      return;
    }
    if (!r.ok) return refuse(r.error.code, isPossibleAttack(r.error));
    const offer = r.body;
    // The sender the server authenticated must be the key that signed: an offer forwarded by
    // anyone else is refused, so an answer never goes to a party other than its signer.
    if (offer.viewerKeyText !== from) return refuse('E_BAD_BINDING', true);
    const acl = this.o.acl();
    if (!acl) return refuse('E_NO_GRANT', false);
    const d = acl.authorize(offer.viewerKey, 'live', this.o.env.now(), offer.camera);
    if (!d.allowed) return refuse(d.error.code, false);
    // Made before this start: possibly answered by the previous run, whose cache is gone (R4).
    if (env.t < this.startedAt) return refuse('E_RESTARTED', false);
    const replayed = checkReplay(env, this.replay, this.o.env.now());
    if (replayed) return refuse(replayed.error.code, isPossibleAttack(replayed.error));
    if (!this.o.media.cameras().some((c) => c.name === offer.camera)) return refuse('E_NO_CAMERA', false);
    let created: Awaited<ReturnType<MediaBackend['createViewerSession']>>;
    try {
      const iceServers = await this.o.iceServers(from);
      created = await this.o.media.createViewerSession(offer.camera, offer.sdp, {
        iceServers,
        sid: offer.sid,
      });
    } catch (e) {
      return refuse(refusalCode(e), false);
    }
    const queued = this.pending.get(key);
    this.pending.delete(key);
    if (this.cancelled.delete(key)) {
      // The viewer gave up (session/close) while the answer was being prepared.
      try {
        created.session.close();
      } catch {
        // already closed
      }
      this.o.onEvent?.({ kind: 'session-closed', viewer: from, sid: offer.sid, reason: 'closed by viewer' });
      return;
    }
    // The grant may have gone while the answer was being prepared (revocation, expiry).
    const again = this.o.acl()?.authorize(offer.viewerKey, 'live', this.o.env.now(), offer.camera);
    if (!again?.allowed) {
      try {
        created.session.close();
      } catch {
        // already closed
      }
      return refuse(again && !again.allowed ? again.error.code : 'E_NO_GRANT', false);
    }
    const live: Live = { viewer: from, camera: offer.camera, sid: offer.sid, media: created.session };
    this.live.set(key, live);
    void created.session.closed.then((code) => {
      if (this.live.get(key) === live) {
        if (code === 'E_DTLS_FAILED')
          this.o.onEvent?.({ kind: 'media-attack', viewer: from, sid: offer.sid, code });
        if (code) return this.end(key, live, code, true);
        this.live.delete(key);
        this.logLive('live/stop', live);
        this.o.onEvent?.({
          kind: 'session-closed',
          viewer: from,
          sid: offer.sid,
          reason: 'transport closed',
        });
      }
    });
    // A viewer that sent an ephemeral key gets a sealed still of the latest frame (`still.ts` in
    // @hearth/protocol), made and sent after the answer, off its critical path.
    let sealer: StillSealer | undefined;
    if (offer.stillKey && this.o.media.still) {
      try {
        sealer = await createStillSealer({
          stillKey: offer.stillKey,
          sid: offer.sid,
          camera: offer.camera,
          digest: offer.digest,
        });
      } catch {
        sealer = undefined; // a small-order key: answer without sk
      }
    }
    const answer = await createAnswer(this.o.signer, offer, created.answerSdp, this.o.env, sealer?.publicKey);
    this.o.send(from, { t: 'session/answer', env: answer });
    // `live/start` once the media connected, with the path it took (a session that closes before
    // that still gets its start, then its stop: the attempt is in the log either way).
    const connected = created.session.connected;
    if (!connected) this.logLive('live/start', live);
    else
      void connected.then((path) => {
        if (path) live.path = path;
        if (this.live.get(key) === live) this.logLive('live/start', live);
      });
    this.o.onEvent?.({ kind: 'session-opened', viewer: from, camera: offer.camera, sid: offer.sid });
    if (sealer) void this.sendStill(key, live, sealer);
    for (const c of queued ?? []) await this.addIce(live, c);
  }

  /** Seal and send the still of a live session; any failure only means no still. */
  private async sendStill(key: string, live: Live, sealer: StillSealer): Promise<void> {
    try {
      const jpeg = await this.o.media.still?.(live.camera);
      if (!jpeg || this.live.get(key) !== live) return;
      const ct = await sealer.seal(jpeg);
      if (this.live.get(key) !== live) return;
      this.o.send(live.viewer, { t: 'session/still', sid: live.sid, ct });
    } catch {
      // the still is a nicety: never a reason for the session to fail
    }
  }

  private async addIce(live: Live, c: unknown): Promise<void> {
    if (!live.media.addIceCandidate) return;
    try {
      await live.media.addIceCandidate(c);
    } catch {
      // a bad candidate only costs that path
    }
  }

  /** Handle a trickled ICE candidate for a session. */
  async onIce(from: string, m: { sid?: unknown; c?: unknown; [k: string]: unknown }): Promise<void> {
    if (typeof m.sid !== 'string' || !m.c) return;
    const key = `${from}/${m.sid}`;
    const live = this.live.get(key);
    if (live) return this.addIce(live, m.c);
    const q = this.pending.get(key);
    if (q && q.length < 64) q.push(m.c);
  }

  /** Close one viewer's session at its request. */
  onClose(from: string, m: { sid?: unknown; [k: string]: unknown }): void {
    if (typeof m.sid !== 'string') return;
    const key = `${from}/${m.sid}`;
    const live = this.live.get(key);
    if (live) this.end(key, live, 'closed by viewer', false);
    else if (this.pending.delete(key)) this.cancelled.add(key); // still being answered: dropped once ready
  }

  /** Re-check every live session against the ACL now; close those no longer allowed. */
  sweep(): number {
    const acl = this.o.acl();
    const now = this.o.env.now();
    let closed = 0;
    for (const [key, l] of this.live) {
      const d = acl ? acl.authorize(l.viewer, 'live', now, l.camera) : undefined;
      if (!d?.allowed) {
        this.end(key, l, d && !d.allowed ? d.error.code : 'E_NO_GRANT', true);
        closed++;
      }
    }
    return closed;
  }

  /** Close everything (shutdown). */
  closeAll(code = 'E_SHUTDOWN'): void {
    for (const [key, l] of this.live) this.end(key, l, code, true);
  }

  /** Stop the sweeper. */
  dispose(): void {
    clearInterval(this.sweeper);
    this.closeAll();
  }

  /** Append `live/start` or `live/stop` (with the code it ended for, when it is one) to the log. */
  private logLive(k: 'live/start' | 'live/stop', l: Live, code?: string): void {
    const sink = this.o.log;
    if (!sink) return;
    if (k === 'live/start') {
      if (l.started) return;
      l.started = true;
    } else if (!l.started) this.logLive('live/start', l);
    const t = this.o.env.now();
    const path = l.path ?? 'direct';
    sink.append(
      (async () => {
        const base = {
          v: 1 as const,
          t,
          viewer: await keyHashOf(l.viewer),
          camera: l.camera,
          sid: await idHashOf(l.sid),
          path,
        };
        if (k === 'live/start') return { ...base, k };
        return { ...base, k, ...(isLogCode(code) ? { code } : {}) };
      })(),
    );
  }

  private end(key: string, l: Live, reason: string, tell: boolean): void {
    if (this.live.get(key) === l) this.logLive('live/stop', l, reason);
    this.live.delete(key);
    try {
      l.media.close();
    } catch {
      // closing a dead transport must not stop the sweep
    }
    if (tell) this.o.send(l.viewer, { t: 'session/closed', sid: l.sid, code: reason });
    this.o.onEvent?.({ kind: 'session-closed', viewer: l.viewer, sid: l.sid, reason });
  }
}
