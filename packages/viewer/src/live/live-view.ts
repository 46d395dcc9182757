/**
 * One live view: a signed WebRTC session with one camera of one paired device (threat model S4).
 *
 * ```
 * viewer (this)                               device
 *  createOffer(pc) ──▶ createOffer(viewer key) ──session/offer {env}──────────▶
 *  trickle ──────────────────────────────────── session/ice {sid, c} ─────────▶
 *  ◀──────────────────────────────────────────── session/answer {env} ─────────
 *  verifyAnswer(env, pinned device key, sid, H(offer))
 *     fails (VerificationError) ──▶ "possible attack": close pc, never setRemoteDescription
 *     ok ──▶ setRemoteDescription(answer) ──▶ ICE + DTLS
 *  connected ──▶ getStats: remote certificate fingerprint == signed fingerprint?
 *     no ──▶ "possible attack": close pc, drop the stream
 *     yes ──▶ "connected (direct|relayed)", from the selected candidate pair
 *  ◀──────────────────────────────────────────── session/refused|closed {sid, code}
 * ```
 *
 * Transient failures (ICE failed, device restarting, no answer, camera offline) retry with jittered
 * backoff; the backoff is only reset once video is decoded, so a camera that keeps going down is
 * not hammered. A possible attack, an access refusal or a camera that cannot start
 * (`E_CAMERA_UNAVAILABLE`) stops until the user starts again. A connection that fails while ICE is
 * up (the DTLS handshake failed: a man in the middle who answered the connectivity checks without
 * the signed key), or that the device closes with `E_DTLS_FAILED`, is a possible attack too: no
 * silent retry loop that hands the attacker a new session each time.
 */
import {
  backoffDelay,
  type CryptoEnv,
  createOffer,
  type DeviceMessage,
  decodeEnvelope,
  type Envelope,
  type Fingerprint,
  type IceServer,
  isPossibleAttack,
  openStill,
  type Signer,
  sameFingerprint,
  verifyAnswer,
  viewerAction,
  x25519Generate,
} from '@hearth/protocol';
import { classifyPath, framesDecoded, remoteCertificateFingerprint } from '../core/stats.js';
import {
  IDLE,
  needsUser,
  nextViewState,
  shouldAutoRetry,
  type ViewEvent,
  type ViewState,
} from '../core/view-state.js';

/** What the live view needs from the rendezvous connection. */
export interface SignalingPort {
  readonly ready: boolean;
  /** ICE servers now: `ready`'s STUN, plus relay credentials while they are fresh. */
  readonly ice: IceServer[];
  /**
   * Make sure relay (TURN) credentials are held for a session with `deviceId`: when ours are not
   * fresh, ask the device (which has the server issue them, review R6) and wait a little. Resolves
   * either way; the session then goes without a relay candidate of its own.
   */
  relay?(deviceId: string): Promise<void>;
  /** Route a message to the device; undefined when not connected. */
  sendTo(to: string, m: unknown): string | undefined;
}

/** The subset of RTCPeerConnection used here (a fake implements it in unit tests). */
export type PeerConnectionLike = Pick<
  RTCPeerConnection,
  | 'addTransceiver'
  | 'createOffer'
  | 'setLocalDescription'
  | 'setRemoteDescription'
  | 'addIceCandidate'
  | 'getStats'
  | 'close'
  | 'connectionState'
  | 'localDescription'
  | 'remoteDescription'
> & {
  /** Read when the connection fails: ICE still up means the DTLS handshake failed. */
  readonly iceConnectionState?: RTCIceConnectionState;
  onicecandidate: ((ev: { candidate: RTCIceCandidate | null }) => void) | null;
  onconnectionstatechange: (() => void) | null;
  ontrack: ((ev: { streams: readonly MediaStream[]; track: MediaStreamTrack }) => void) | null;
};

/** Options of {@link LiveView}. */
export interface LiveViewOptions {
  deviceId: string;
  /** Raw device public key pinned at pairing. */
  pinnedDeviceKey: Uint8Array;
  camera: string;
  signer: Signer;
  env: CryptoEnv;
  signaling: SignalingPort;
  /** Show (or clear, with null) the received stream. */
  attach(stream: MediaStream | null): void;
  /** Called on every state change. */
  onState?(s: ViewState): void;
  /**
   * Show (or clear, with null) the device's sealed still, a JPEG, until the first video frame
   * plays. Set it to ask for one (the offer then carries an ephemeral key); only a still that
   * opens under the key from the verified answer is ever passed here.
   */
  showStill?(jpeg: Uint8Array | null): void;
  createPeerConnection?(config: RTCConfiguration): PeerConnectionLike;
  /** How long to wait for an answer before retrying (ms). Default 15 s. */
  answerTimeoutMs?: number;
  /** How long `disconnected` may last before a new session is set up (ms). Default 6 s. */
  disconnectGraceMs?: number;
  /** Stats polling interval while connected (ms). Default 2 s. */
  statsMs?: number;
  /** First retry ceiling after a transient failure (ms; doubles, jittered, up to 30 s). Default 1 s. */
  retryBaseMs?: number;
}

/** The last error, for the UI and for tests (no secrets: codes and short messages only). */
export interface LastError {
  code: string;
  message: string;
  attack: boolean;
}

interface Attempt {
  sid: string;
  digest: string;
  pc: PeerConnectionLike;
  answered: boolean;
  expected?: Fingerprint;
  pendingIce: RTCIceCandidateInit[];
  fingerprintChecked: boolean;
  timers: ReturnType<typeof setTimeout>[];
  /** Our ephemeral secret for the sealed still, until one opens. */
  stillSecret?: CryptoKey;
  /** The device's ephemeral key, from the verified answer. */
  deviceStillKey?: Uint8Array;
  stillTries: number;
}

export class LiveView {
  state: ViewState = IDLE;
  lastError: LastError | undefined;
  private cur: Attempt | undefined;
  /** Session ids of abandoned attempts: their late answers are ignored, not flagged. */
  private readonly old = new Set<string>();
  private retries = 0;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private statsTimer: ReturnType<typeof setInterval> | undefined;
  private decodedFromStats = 0;
  private decodedFromCallback = 0;
  private online: boolean | undefined;
  private stopped = true;
  /** Counts attempts waiting for relay credentials (only the newest goes on). */
  private relayGen = 0;

  constructor(private readonly o: LiveViewOptions) {}

  /** Frames decoded so far in this view (max of getStats and requestVideoFrameCallback counts). */
  framesDecoded(): number {
    return Math.max(this.decodedFromStats, this.decodedFromCallback);
  }

  /** Count a frame presented by the video element (requestVideoFrameCallback). */
  countFrame(): void {
    this.decodedFromCallback++;
  }

  /** Start (or, after an attack or a refusal, restart) the view. */
  start(): void {
    this.stopped = false;
    this.retries = 0;
    this.lastError = undefined;
    this.dispatch({ type: 'start' });
    if (this.online === false) this.dispatch({ type: 'presence', online: false });
    else void this.attempt();
  }

  /** Leave the view: close the session and tell the device. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.endAttempt(true);
    this.o.showStill?.(null);
    this.dispatch({ type: 'stop' });
  }

  /** The rendezvous connection is authenticated again. */
  onSignalingReady(): void {
    if (this.stopped) return;
    this.dispatch({ type: 'rendezvous-up' });
    if (
      this.state.name === 'reconnecting' ||
      ((this.state.name === 'connecting' || this.state.name === 'camera offline') && !this.cur)
    )
      this.scheduleRetry(0);
  }

  /** The rendezvous connection dropped. */
  onSignalingDown(): void {
    if (this.stopped) return;
    const before = this.state.name;
    this.dispatch({ type: 'rendezvous-down' });
    // An attempt still waiting for its answer can no longer get one.
    if (before !== this.state.name && this.cur && !this.cur.answered) this.endAttempt(false);
  }

  /** Presence of our device changed. */
  onPresence(online: boolean): void {
    this.online = online;
    if (this.stopped) return;
    const before = this.state.name;
    this.dispatch({ type: 'presence', online });
    if (!online && this.state.name === 'device offline' && before !== 'device offline') {
      clearTimeout(this.retryTimer);
      this.endAttempt(false);
    }
    if (online && before === 'device offline') this.scheduleRetry(0);
  }

  /**
   * A check of the sealed channel to our device failed (an accept not signed by the pinned key, a
   * message that does not open): the signaling path is tampering. Shown as a possible attack.
   */
  onChannelAttack(code: string, message: string): void {
    if (this.stopped) return;
    this.attack(code, message);
  }

  /** A session message from the device (already schema-checked; `from` is checked by the caller). */
  async onMessage(m: DeviceMessage): Promise<void> {
    if (this.stopped) return;
    switch (m.t) {
      case 'session/answer':
        return this.onAnswer(m.env);
      case 'session/still':
        return this.onStill(m.sid, m.ct);
      case 'session/ice': {
        const a = this.cur;
        if (!a || m.sid !== a.sid) return;
        if (!a.answered) {
          if (m.c) a.pendingIce.push(m.c as RTCIceCandidateInit);
          return;
        }
        await this.addIce(a, m.c as RTCIceCandidateInit | null);
        return;
      }
      case 'session/refused': {
        const a = this.cur;
        if (!a || (m.sid !== a.sid && m.sid !== '')) return;
        this.fail({ code: m.code, message: 'the device refused the session', attack: false });
        this.endAttempt(false);
        this.dispatch({ type: 'refused', code: m.code });
        if (this.state.name === 'camera offline' || this.state.name === 'reconnecting') this.scheduleRetry();
        return;
      }
      case 'session/closed': {
        const a = this.cur;
        if (!a || m.sid !== a.sid) return;
        if (viewerAction(m.code) === 'attack')
          // E_DTLS_FAILED: the device saw a peer complete ICE in this session's name without the signed key.
          return this.attack(
            m.code,
            m.code === 'E_DTLS_FAILED'
              ? 'the device saw a media peer that could not prove the signed DTLS key'
              : 'the device closed the session after a failed security check',
          );
        this.fail({ code: m.code, message: 'the device closed the session', attack: false });
        this.endAttempt(false);
        this.dispatch({ type: 'closed', code: m.code });
        if (this.state.name === 'reconnecting' || this.state.name === 'camera offline') this.scheduleRetry();
        return;
      }
      default:
        return;
    }
  }

  private dispatch(e: ViewEvent): void {
    const next = nextViewState(this.state, e);
    if (next.name === this.state.name && next.code === this.state.code) return;
    this.state = next;
    this.o.onState?.(next);
  }

  private fail(e: LastError): void {
    this.lastError = e;
  }

  private async attempt(): Promise<void> {
    if (this.stopped || needsUser(this.state)) return;
    this.endAttempt(false);
    if (!this.o.signaling.ready) return; // onSignalingReady() resumes
    if (this.o.signaling.relay) {
      const gen = ++this.relayGen;
      await this.o.signaling.relay(this.o.deviceId);
      // Stopped, or another attempt began, while we waited.
      if (this.stopped || gen !== this.relayGen || this.cur) return;
    }
    const pc = (
      this.o.createPeerConnection ?? ((c) => new RTCPeerConnection(c) as unknown as PeerConnectionLike)
    )({
      iceServers: this.o.signaling.ice as RTCIceServer[],
      bundlePolicy: 'max-bundle',
      rtcpMuxPolicy: 'require',
    });
    pc.addTransceiver('video', { direction: 'recvonly' });
    const localIce: (RTCIceCandidateInit | null)[] = [];
    let sid: string | undefined;
    pc.onicecandidate = (ev) => {
      const c = ev.candidate ? ev.candidate.toJSON() : null;
      if (sid && this.cur?.pc === pc) this.o.signaling.sendTo(this.o.deviceId, { t: 'session/ice', sid, c });
      else localIce.push(c);
    };
    pc.ontrack = (ev) => {
      if (this.cur?.pc !== pc || !this.cur.answered) return;
      this.o.attach(ev.streams[0] ?? new MediaStream([ev.track]));
    };
    pc.onconnectionstatechange = () => this.onPcState(pc);
    let offer: Awaited<ReturnType<typeof createOffer>>;
    let still: Awaited<ReturnType<typeof x25519Generate>> | undefined;
    try {
      const desc = await pc.createOffer();
      await pc.setLocalDescription(desc);
      const sdp = pc.localDescription?.sdp ?? desc.sdp ?? '';
      // A fresh ephemeral key per attempt asks the device for a sealed still (protocol still.ts).
      // (A browser without WebCrypto X25519 simply asks for none.)
      still = this.o.showStill ? await x25519Generate().catch(() => undefined) : undefined;
      offer = await createOffer(
        this.o.signer,
        {
          deviceId: this.o.deviceId,
          camera: this.o.camera,
          sdp,
          ...(still ? { stillKey: still.publicKey } : {}),
        },
        this.o.env,
      );
    } catch (err) {
      pc.close();
      this.fail({
        code: (err as { code?: string }).code ?? 'E_WEBRTC',
        message: String((err as Error).message ?? err),
        attack: false,
      });
      this.dispatch({ type: 'pc-failed' });
      this.scheduleRetry();
      return;
    }
    if (this.stopped) {
      pc.close();
      return;
    }
    sid = offer.sid;
    const a: Attempt = {
      sid,
      digest: offer.digest,
      pc,
      answered: false,
      pendingIce: [],
      fingerprintChecked: false,
      timers: [],
      ...(still ? { stillSecret: still.privateKey } : {}),
      stillTries: 0,
    };
    this.cur = a;
    if (!this.o.signaling.sendTo(this.o.deviceId, { t: 'session/offer', env: offer.envelope })) {
      this.endAttempt(false);
      this.dispatch({ type: 'rendezvous-down' });
      return;
    }
    for (const c of localIce) this.o.signaling.sendTo(this.o.deviceId, { t: 'session/ice', sid, c });
    a.timers.push(
      setTimeout(() => {
        if (this.cur !== a || a.answered) return;
        this.fail({ code: 'E_TIMEOUT', message: 'no answer from the device', attack: false });
        this.endAttempt(true);
        this.dispatch({ type: 'retry' });
        this.scheduleRetry();
      }, this.o.answerTimeoutMs ?? 15_000),
    );
  }

  private async onAnswer(raw: unknown): Promise<void> {
    const a = this.cur;
    // The answer's sid is inside the signed body; peek (unverified) only to drop late answers to
    // offers we already abandoned. An answer claiming the current sid is always verified.
    const claimed =
      typeof raw === 'object' && raw !== null ? (raw as { b?: { sid?: unknown } }).b?.sid : undefined;
    if (typeof claimed === 'string' && this.old.has(claimed)) return;
    if (!a) return;
    let env: Envelope;
    try {
      env = decodeEnvelope(raw);
    } catch (err) {
      // Malformed (not a failed check): drop it and keep waiting; the timeout retries.
      this.fail({
        code: (err as { code?: string }).code ?? 'E_SCHEMA',
        message: 'malformed answer',
        attack: false,
      });
      return;
    }
    const r = await verifyAnswer(env, {
      pinnedDeviceKey: this.o.pinnedDeviceKey,
      sid: a.sid,
      offerDigest: a.digest,
      now: this.o.env.now(),
    });
    if (this.cur !== a) return;
    if (!r.ok) {
      const { code, message } = r.error;
      if (isPossibleAttack(r.error)) return this.attack(code, message);
      this.fail({ code, message: 'answer rejected', attack: false });
      return;
    }
    if (a.answered) return; // a duplicate of the answer we applied
    a.answered = true;
    a.expected = r.body.fingerprint;
    if (r.body.stillKey) a.deviceStillKey = r.body.stillKey;
    try {
      await a.pc.setRemoteDescription({ type: 'answer', sdp: r.body.sdp });
      for (const c of a.pendingIce.splice(0)) await this.addIce(a, c);
    } catch (err) {
      if (this.cur !== a) return;
      this.fail({ code: 'E_WEBRTC', message: String((err as Error).message ?? err), attack: false });
      this.endAttempt(true);
      this.dispatch({ type: 'pc-failed' });
      this.scheduleRetry();
    }
  }

  /**
   * A sealed still for the current session, only after its answer verified. One that does not open
   * is dropped silently: it is not on the media path and decides nothing (a server that forges one
   * learns nothing and shows nothing; it could as well drop the real one), so it is no alarm.
   */
  private async onStill(sid: string, ct: string): Promise<void> {
    const a = this.cur;
    if (!a || sid !== a.sid || !a.answered || !a.stillSecret || !a.deviceStillKey) return;
    if (a.stillTries >= 3) return; // bound the work a flood of forged stills can cause
    a.stillTries++;
    let jpeg: Uint8Array;
    try {
      jpeg = await openStill({
        secret: a.stillSecret,
        deviceStillKey: a.deviceStillKey,
        ctx: { sid: a.sid, camera: this.o.camera, offerDigest: a.digest },
        ct,
      });
    } catch {
      return;
    }
    const n = jpeg.length;
    if (this.cur !== a || !a.stillSecret || this.stopped) return;
    if (n < 4 || jpeg[0] !== 0xff || jpeg[1] !== 0xd8 || jpeg[n - 2] !== 0xff || jpeg[n - 1] !== 0xd9) return;
    a.stillSecret = undefined; // one still per session
    this.o.showStill?.(jpeg);
  }

  private async addIce(a: Attempt, c: RTCIceCandidateInit | null): Promise<void> {
    try {
      await a.pc.addIceCandidate(c ?? undefined);
    } catch {
      // A bad candidate only costs that path; ICE carries on with the others.
    }
  }

  private attack(code: string, message: string): void {
    // Close first: no setRemoteDescription, no media, nothing more from this peer connection.
    this.fail({ code, message, attack: true });
    clearTimeout(this.retryTimer);
    this.endAttempt(true);
    this.o.showStill?.(null);
    this.dispatch({ type: 'attack', code });
  }

  private onPcState(pc: PeerConnectionLike): void {
    const a = this.cur;
    if (!a || a.pc !== pc || this.stopped) return;
    switch (pc.connectionState) {
      case 'connected':
        void this.onConnected(a);
        return;
      case 'disconnected':
        this.dispatch({ type: 'pc-disconnected' });
        a.timers.push(
          setTimeout(() => {
            if (this.cur === a && a.pc.connectionState === 'disconnected')
              this.restart('E_DISCONNECTED', 'connection lost');
          }, this.o.disconnectGraceMs ?? 6_000),
        );
        return;
      case 'failed': {
        // ICE still up while the connection failed: the DTLS handshake failed, so whoever answered
        // the connectivity checks could not prove the key the device signed. A man in the middle,
        // not a network fault: stop here instead of handing it a new session on every retry.
        const ice = pc.iceConnectionState;
        if (ice === 'connected' || ice === 'completed')
          this.attack('E_DTLS_FAILED', 'the media peer could not prove the DTLS key the device signed');
        else this.restart('E_ICE_FAILED', 'no network path to the device');
        return;
      }
      default:
        return;
    }
  }

  private restart(code: string, message: string): void {
    this.fail({ code, message, attack: false });
    this.endAttempt(true);
    this.dispatch({ type: 'pc-failed' });
    this.scheduleRetry();
  }

  private async onConnected(a: Attempt): Promise<void> {
    const report = await a.pc.getStats();
    if (this.cur !== a) return;
    if (!a.fingerprintChecked && a.expected) {
      // The browser already refuses a DTLS peer whose certificate does not match the SDP we
      // applied; this check ties what the browser saw to what the device signed, independently.
      const seen = remoteCertificateFingerprint(report);
      if (seen && !sameFingerprint(seen, a.expected)) {
        return this.attack('E_FINGERPRINT_MISMATCH', 'the DTLS certificate is not the one the device signed');
      }
      a.fingerprintChecked = seen !== undefined;
    }
    const path = classifyPath(report);
    if (path) this.dispatch({ type: 'pc-connected', path: path.path });
    this.noteDecoded(report);
    clearInterval(this.statsTimer);
    this.statsTimer = setInterval(() => void this.poll(a), this.o.statsMs ?? 2_000);
  }

  private async poll(a: Attempt): Promise<void> {
    if (this.cur !== a) return;
    let report: RTCStatsReport;
    try {
      report = await a.pc.getStats();
    } catch {
      return;
    }
    if (this.cur !== a) return;
    if (!a.fingerprintChecked && a.expected) {
      const seen = remoteCertificateFingerprint(report);
      if (seen && !sameFingerprint(seen, a.expected))
        return this.attack('E_FINGERPRINT_MISMATCH', 'the DTLS certificate is not the one the device signed');
      a.fingerprintChecked = seen !== undefined;
    }
    this.noteDecoded(report);
    const path = classifyPath(report);
    if (!path || a.pc.connectionState !== 'connected') return;
    this.dispatch(
      this.state.name.startsWith('connected')
        ? { type: 'path', path: path.path }
        : { type: 'pc-connected', path: path.path },
    );
  }

  /** Frames decoded by this attempt's peer connection: video flows, so the backoff starts over. */
  private noteDecoded(report: RTCStatsReport): void {
    const n = framesDecoded(report);
    if (n > 0) this.retries = 0;
    this.decodedFromStats = Math.max(this.decodedFromStats, n);
  }

  private scheduleRetry(delayMs?: number): void {
    if (this.stopped) return;
    clearTimeout(this.retryTimer);
    const d = delayMs ?? backoffDelay(this.retries++, { baseMs: this.o.retryBaseMs ?? 1_000, maxMs: 30_000 });
    this.retryTimer = setTimeout(() => {
      if (shouldAutoRetry(this.state)) void this.attempt();
    }, d);
  }

  /** Close the current attempt's peer connection; `tell` the device when it may hold a session. */
  private endAttempt(tell: boolean): void {
    const a = this.cur;
    clearInterval(this.statsTimer);
    if (!a) return;
    this.cur = undefined;
    this.old.add(a.sid);
    if (this.old.size > 64) this.old.delete(this.old.values().next().value as string);
    for (const t of a.timers) clearTimeout(t);
    a.pc.onicecandidate = a.pc.ontrack = a.pc.onconnectionstatechange = null;
    a.pc.close();
    this.o.attach(null);
    if (tell && this.o.signaling.ready)
      this.o.signaling.sendTo(this.o.deviceId, { t: 'session/close', sid: a.sid });
  }
}
