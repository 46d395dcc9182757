/**
 * One viewer's WebRTC peer on libdatachannel (node-datachannel): answers a browser's recvonly H.264
 * offer with a sendonly H.264 answer, then sends the camera's access units through libdatachannel's
 * H.264 packetizer (RFC 6184), with RTCP sender reports and NACK retransmission. A new peer starts
 * with the cached GOP (from its IDR with SPS/PPS), paced, then continues live, so the first frame
 * never waits for the camera's next keyframe.
 *
 * Why libdatachannel: its DTLS is OpenSSL. The handshake checks the peer's CertificateVerify (as
 * DTLS server), the ServerKeyExchange signature (as DTLS client) and both Finished messages, and
 * only then the certificate's SHA-256 against the fingerprint of the signed offer. werift 0.24 only
 * hashed the certificate, so a man in the middle could replay the viewer's certificate with a key
 * of its own and get the SRTP keys (docs/architecture.md, "Media stack").
 *
 * A peer whose ICE connected but whose DTLS never completed could not prove it holds the key of the
 * signed fingerprint: that is reported as a possible attack (`dtlsfailed`).
 *
 * RTP timestamps are the 90 kHz wall clock at the moment each access unit is handed to the sender
 * (strictly increasing). The Annex-B pipe carries no timestamps; for the replayed GOP this makes the
 * frames' timestamps match their (paced) arrival, so the browser's jitter estimate stays calm and the
 * replay plays out quickly up to live instead of lagging a GOP behind.
 */
import { randomInt } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { networkInterfaces } from 'node:os';
import ndc from 'node-datachannel';
import { type AccessUnit, type GopSnapshot, NAL, nalType } from './annexb.js';
import { MediaError, type MediaLogger, silentLogger } from './errors.js';
import { DEFAULT_MAX_PAYLOAD } from './rtp-h264.js';
import { chooseH264, offeredH264, restrictVideoToPayloadType, sdpFingerprint, videoMid } from './sdp-h264.js';
import { SendQueue } from './send-queue.js';

export interface IceServerConfig {
  readonly urls: string | readonly string[];
  readonly username?: string;
  readonly credential?: string;
}

export interface ViewerPeerOptions {
  readonly iceServers?: readonly IceServerConfig[];
  /**
   * Address to bind ICE sockets to (libdatachannel's `bindAddress`). Unset: every interface but
   * loopback, or `127.0.0.1` when loopback is the only interface there is (a loopback-only namespace).
   */
  readonly bindAddress?: string;
  readonly iceTransportPolicy?: 'all' | 'relay';
  readonly icePortRange?: readonly [number, number];
  /** profile-level-id of the stream (from its SPS). Default 42e01f. */
  readonly profileLevelId?: string;
  /** Wait for ICE gathering to complete before returning the answer (non-trickle). Default true. */
  readonly waitForGathering?: boolean;
  /** Cap on that wait. Default 3000 ms. */
  readonly gatherTimeoutMs?: number;
  /** RTP payload budget. Default 1200. */
  readonly maxPayload?: number;
  /** Pace of the GOP replay, bits per second. Default 40 Mbit/s. */
  readonly replayBitrate?: number;
  /**
   * Start from the camera's cached GOP (default true). False waits for the camera's next keyframe,
   * as a plain relay would; only for A/B benchmarks.
   */
  readonly replayCache?: boolean;
  /** Max bytes queued for this viewer before it is resynchronised at the next keyframe. Default 8 MiB. */
  readonly maxQueueBytes?: number;
  readonly logger?: MediaLogger;
  /** Label for logs (camera name, session id). */
  readonly label?: string;
}

export type CandidateType = 'host' | 'srflx' | 'prflx' | 'relay';
export type PeerConnectionState = 'new' | 'connecting' | 'connected' | 'disconnected' | 'failed' | 'closed';

export interface ViewerPeerStats {
  readonly state: PeerConnectionState;
  readonly framesSent: number;
  readonly keyframesSent: number;
  /** RTP payload bytes handed to the packetizer (Annex-B access units without start codes). */
  readonly bytesSent: number;
  readonly framesDropped: number;
  readonly replayedFrames: number;
  /** ICE connected, then DTLS failed: the peer could not prove the signed fingerprint's key. */
  readonly dtlsFailed: boolean;
  /** ms from construction to DTLS connected, and to the first frame handed to the sender. */
  readonly connectedAfterMs: number | undefined;
  readonly firstFrameAfterMs: number | undefined;
  /**
   * Access units the queue handed over while the track was not open (lost: never on the wire).
   * The queue opens only once the track is, so this stays 0; a first unit lost here is the
   * replayed keyframe, and the viewer then waits for the camera's next one.
   */
  readonly unitsLostNotOpen: number;
}

interface PeerEvents {
  state: [PeerConnectionState];
  icecandidate: [{ candidate: string; sdpMid?: string; sdpMLineIndex?: number } | undefined];
  closed: [];
  firstframe: [{ afterMs: number; replayed: number }];
  /** ICE reached the peer but the DTLS handshake failed: a possible attack (see file comment). */
  dtlsfailed: [{ afterMs: number }];
}

/**
 * What the hub needs of one viewer's peer. {@link ViewerPeer} is the product's; tests plug in
 * others through {@link PeerFactory} (a werift peer as the broken-verifier control of the DTLS
 * attack tests, and as the old stack in the T9 benchmark).
 */
export interface MediaPeer extends EventEmitter<PeerEvents> {
  readonly answerSdp: string;
  readonly connectionState: PeerConnectionState;
  readonly closed: boolean;
  start(snapshot: GopSnapshot): void;
  push(au: AccessUnit): void;
  resync(): void;
  stats(): ViewerPeerStats;
  close(): Promise<void>;
  addIceCandidate(c: {
    candidate: string;
    sdpMid?: string | null;
    sdpMLineIndex?: number | null;
  }): Promise<void>;
  selectedCandidatePair(): Promise<{ local: CandidateType; remote: CandidateType } | undefined>;
  getLocalFingerprint(): { algorithm: string; value: string } | undefined;
}

/** Makes the peer for one offer (default: {@link ViewerPeer.create}). */
export type PeerFactory = (offerSdp: string, opts: ViewerPeerOptions) => Promise<MediaPeer>;

export type { PeerEvents };

const START_CODE = Buffer.from([0, 0, 0, 1]);

// libdatachannel's own log (ICE, DTLS, SRTP), to stderr, for diagnosing a connection:
// HEARTH_WEBRTC_LOG=Verbose|Debug|Info|Warning|Error. Off by default.
const LOG_LEVELS = ['Verbose', 'Debug', 'Info', 'Warning', 'Error', 'Fatal'] as const;
const wantLog = LOG_LEVELS.find((l) => l === process.env.HEARTH_WEBRTC_LOG);
if (wantLog)
  ndc.initLogger(wantLog, (level, message) => process.stderr.write(`[webrtc ${level}] ${message}\n`));
const PEER_STATES: ReadonlySet<string> = new Set([
  'new',
  'connecting',
  'connected',
  'disconnected',
  'failed',
  'closed',
]);

/** `stun:`/`turn:`/`turns:` URLs to libdatachannel's structured ICE servers (credentials kept apart). */
export function toLibIceServers(servers: readonly IceServerConfig[]): (string | ndc.IceServer)[] {
  const out: (string | ndc.IceServer)[] = [];
  for (const s of servers) {
    for (const url of typeof s.urls === 'string' ? [s.urls] : s.urls) {
      const m =
        /^(stun|stuns|turn|turns):(\[[0-9a-fA-F:.]+\]|[^:?[\]]+)(?::(\d{1,5}))?(?:\?transport=(udp|tcp))?$/.exec(
          url,
        );
      if (!m) continue; // unknown scheme or shape: that server is skipped, not misparsed
      const scheme = m[1] as string;
      const hostname = (m[2] as string).replace(/^\[|\]$/g, '');
      const secure = scheme.endsWith('s');
      const port = m[3] ? Number(m[3]) : secure ? 5349 : 3478;
      if (port < 1 || port > 65535) continue;
      if (scheme.startsWith('stun')) {
        out.push({ hostname, port });
        continue;
      }
      if (s.username === undefined || s.credential === undefined) continue;
      out.push({
        hostname,
        port,
        username: s.username,
        password: s.credential,
        relayType: secure ? 'TurnTls' : m[4] === 'tcp' ? 'TurnTcp' : 'TurnUdp',
      });
    }
  }
  return out;
}

/** True when this host has no interface but loopback (libjuice would then gather no candidate). */
function loopbackOnlyBind(): boolean {
  return Object.values(networkInterfaces()).every((list) => (list ?? []).every((a) => a.internal));
}

export class ViewerPeer extends EventEmitter<PeerEvents> implements MediaPeer {
  private readonly pc: ndc.PeerConnection;
  private track: ndc.Track | undefined;
  private rtpConfig: ndc.RtpPacketizationConfig | undefined;
  private readonly opts: ViewerPeerOptions;
  private readonly log: MediaLogger;
  private readonly t0 = performance.now();
  private answer = '';
  private state: PeerConnectionState = 'new';
  private iceConnected = false;
  private dtlsFailed = false;
  private connected = false;
  private trackOpen = false;
  private unitsLostNotOpen = 0;
  private readonly sendQueue: SendQueue;
  private isClosed = false;
  private readonly ssrc = randomInt(1, 0x7fffffff);
  private readonly tsBase = randomInt(0, 0x7fffffff);
  private lastTs = -1;
  private framesSent = 0;
  private keyframesSent = 0;
  private bytesSent = 0;
  private connectedAt: number | undefined;
  private firstFrameAt: number | undefined;
  private gatherWaiters: (() => void)[] = [];

  private constructor(opts: ViewerPeerOptions) {
    super();
    this.opts = opts;
    this.sendQueue = new SendQueue({
      ...(opts.replayBitrate !== undefined ? { replayBitrate: opts.replayBitrate } : {}),
      ...(opts.replayCache !== undefined ? { replayCache: opts.replayCache } : {}),
      ...(opts.maxQueueBytes !== undefined ? { maxQueueBytes: opts.maxQueueBytes } : {}),
      send: (au) => this.sendAccessUnit(au),
    });
    this.log = opts.logger ?? silentLogger;
    this.pc = new ndc.PeerConnection(opts.label ?? 'viewer', {
      iceServers: toLibIceServers(opts.iceServers ?? []),
      disableAutoNegotiation: true,
      // Never: fingerprint verification is what binds DTLS to the signed offer.
      disableFingerprintVerification: false,
      ...((opts.bindAddress ?? loopbackOnlyBind()) ? { bindAddress: opts.bindAddress ?? '127.0.0.1' } : {}),
      ...(opts.iceTransportPolicy ? { iceTransportPolicy: opts.iceTransportPolicy } : {}),
      ...(opts.icePortRange
        ? { portRangeBegin: opts.icePortRange[0], portRangeEnd: opts.icePortRange[1] }
        : {}),
    });
    this.pc.onStateChange((s) => this.onState(s));
    this.pc.onIceStateChange((s) => {
      if (s === 'connected' || s === 'completed') this.iceConnected = true;
    });
    this.pc.onGatheringStateChange((s) => {
      if (s !== 'complete') return;
      for (const w of this.gatherWaiters.splice(0)) w();
    });
    this.pc.onLocalCandidate((candidate, mid) => {
      this.emit('icecandidate', { candidate, sdpMid: mid });
    });
  }

  /**
   * Creates the peer for a browser offer and returns it with its answer (`peer.answerSdp`). The
   * offer must have a video m-section with H.264 packetization-mode=1.
   */
  static async create(offerSdp: string, opts: ViewerPeerOptions = {}): Promise<ViewerPeer> {
    if (typeof offerSdp !== 'string' || !offerSdp.startsWith('v=0') || offerSdp.length > 64 * 1024) {
      throw new MediaError('bad-offer', 'offer is not an SDP of at most 64 KiB');
    }
    const choice = chooseH264(offeredH264(offerSdp), opts.profileLevelId ?? '42e01f');
    const mid = videoMid(offerSdp);
    const profile = (choice.profileLevelId ?? opts.profileLevelId ?? '42e01f').toLowerCase();
    const peer = new ViewerPeer({ ...opts, profileLevelId: profile });
    try {
      peer.addVideoTrack(mid, choice.pt, profile);
      peer.pc.setRemoteDescription(restrictVideoToPayloadType(offerSdp, choice.pt), 'offer');
      peer.pc.setLocalDescription('answer');
      if (opts.waitForGathering !== false) await peer.waitGathering(opts.gatherTimeoutMs ?? 3000);
      const local = peer.pc.localDescription();
      if (!local?.sdp) throw new Error('no local description');
      peer.answer = local.sdp;
    } catch (e) {
      await peer.close();
      if (e instanceof MediaError) throw e;
      throw new MediaError(
        'bad-offer',
        `cannot answer the offer: ${e instanceof Error ? e.message : String(e)}`,
      );
    }
    return peer;
  }

  private addVideoTrack(mid: string, pt: number, profile: string): void {
    const video = new ndc.Video(mid, 'SendOnly');
    video.addH264Codec(pt, `level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=${profile}`);
    const cname = `hearth-${this.ssrc.toString(16)}`;
    video.addSSRC(this.ssrc, cname, 'hearth', 'video');
    const track = this.pc.addTrack(video);
    const cfg = new ndc.RtpPacketizationConfig(this.ssrc, cname, pt, 90000);
    const packetizer = new ndc.H264RtpPacketizer(
      'LongStartSequence',
      cfg,
      this.opts.maxPayload ?? DEFAULT_MAX_PAYLOAD,
    );
    packetizer.addToChain(new ndc.RtcpSrReporter(cfg));
    packetizer.addToChain(new ndc.RtcpNackResponder());
    track.setMediaHandler(packetizer);
    // libdatachannel reports the connection `connected` (DTLS done) before it opens the tracks
    // (SRTP), and the two callbacks reach JS in that order: start sending on the track's own open.
    track.onOpen(() => {
      this.trackOpen = true;
      this.openQueueWhenReady();
    });
    this.track = track;
    this.rtpConfig = cfg;
  }

  private onState(raw: string): void {
    if (!PEER_STATES.has(raw)) return;
    const s = raw as PeerConnectionState;
    if (s === this.state) return;
    this.state = s;
    this.log.debug?.({ peer: this.opts.label, state: s }, 'peer state');
    this.emit('state', s);
    if (s === 'connected' && !this.connected) {
      this.connected = true;
      this.connectedAt = performance.now();
      this.openQueueWhenReady();
    }
    if (s === 'failed' && this.iceConnected && !this.connected && !this.dtlsFailed) {
      this.dtlsFailed = true;
      this.emit('dtlsfailed', { afterMs: performance.now() - this.t0 });
    }
    if (s === 'failed' || s === 'closed') void this.close();
  }

  /** The answer SDP (sendonly H.264; carries `a=fingerprint:sha-256`). */
  get answerSdp(): string {
    return this.answer;
  }

  get connectionState(): PeerConnectionState {
    return this.state;
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /** The local DTLS certificate fingerprint as it appears in the answer. */
  getLocalFingerprint(): { algorithm: string; value: string } | undefined {
    return sdpFingerprint(this.answer);
  }

  /** Trickled remote candidate (optional: the offer may carry all candidates). */
  async addIceCandidate(c: {
    candidate: string;
    sdpMid?: string | null;
    sdpMLineIndex?: number | null;
  }): Promise<void> {
    if (this.isClosed || !c.candidate) return;
    const mid = c.sdpMid ?? this.track?.mid() ?? '0';
    try {
      this.pc.addRemoteCandidate(c.candidate, mid);
    } catch (e) {
      throw new MediaError('bad-offer', `bad ICE candidate: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  /** Types of the selected (nominated) candidate pair, once connected. */
  async selectedCandidatePair(): Promise<{ local: CandidateType; remote: CandidateType } | undefined> {
    if (this.isClosed) return undefined;
    const p = this.pc.getSelectedCandidatePair();
    if (!p) return undefined;
    const norm = (t: string): CandidateType | undefined =>
      (['host', 'srflx', 'prflx', 'relay'] as const).find((x) => x === t.toLowerCase());
    const local = norm(p.local.type);
    const remote = norm(p.remote.type);
    return local && remote ? { local, remote } : undefined;
  }

  /** Loads the cached GOP; call before `push`ing live units. */
  start(snapshot: GopSnapshot): void {
    this.sendQueue.start(snapshot);
  }

  /** Offers one access unit (live or replayed). */
  push(au: AccessUnit): void {
    if (!this.isClosed) this.sendQueue.push(au);
  }

  /** The source restarted (new ffmpeg): drop what is queued and wait for its first keyframe. */
  resync(): void {
    this.sendQueue.resync();
  }

  stats(): ViewerPeerStats {
    return {
      state: this.connectionState,
      framesSent: this.framesSent,
      keyframesSent: this.keyframesSent,
      bytesSent: this.bytesSent,
      framesDropped: this.sendQueue.framesDropped,
      replayedFrames: this.sendQueue.replayedFrames,
      dtlsFailed: this.dtlsFailed,
      connectedAfterMs: this.connectedAt === undefined ? undefined : this.connectedAt - this.t0,
      firstFrameAfterMs: this.firstFrameAt === undefined ? undefined : this.firstFrameAt - this.t0,
      unitsLostNotOpen: this.unitsLostNotOpen,
    };
  }

  async close(): Promise<void> {
    if (this.isClosed) return;
    this.isClosed = true;
    this.sendQueue.close();
    for (const w of this.gatherWaiters.splice(0)) w();
    try {
      this.track?.close();
    } catch {
      // already closing
    }
    try {
      this.pc.close();
    } catch {
      // already closing
    }
    if (this.state !== 'failed') this.state = 'closed';
    this.emit('closed');
  }

  /** Starts the queue (cached GOP first) once DTLS is done and the track is open, not before. */
  private openQueueWhenReady(): void {
    if (this.connected && (this.trackOpen || this.track?.isOpen()) && !this.isClosed) {
      this.trackOpen = true;
      this.sendQueue.opened();
    }
  }

  private waitGathering(timeoutMs: number): Promise<void> {
    if (this.pc.gatheringState() === 'complete') return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(done, timeoutMs);
      const self = this;
      this.gatherWaiters.push(done);
      function done(): void {
        clearTimeout(t);
        self.gatherWaiters = self.gatherWaiters.filter((w) => w !== done);
        resolve();
      }
    });
  }

  private sendAccessUnit(au: AccessUnit): void {
    const track = this.track;
    const cfg = this.rtpConfig;
    if (!track || !cfg) return;
    if (!track.isOpen()) {
      this.unitsLostNotOpen++;
      return;
    }
    let ts = (this.tsBase + Math.round(performance.now() * 90)) >>> 0;
    if (this.lastTs >= 0 && (ts - this.lastTs) >>> 0 > 0x7fffffff) ts = (this.lastTs + 1) >>> 0;
    if (ts === this.lastTs) ts = (ts + 1) >>> 0;
    this.lastTs = ts;
    cfg.timestamp = ts;
    const parts: Buffer[] = [];
    let bytes = 0;
    for (const nal of au.nals) {
      if (nal.length === 0) continue;
      const t = nalType(nal);
      if (t === NAL.AUD || t === NAL.FILLER) continue;
      parts.push(START_CODE, nal);
      bytes += nal.length;
    }
    if (parts.length === 0) return;
    try {
      track.sendMessageBinary(Buffer.concat(parts));
    } catch (e) {
      this.log.debug?.({ peer: this.opts.label, err: String(e) }, 'send failed');
      return;
    }
    this.bytesSent += bytes;
    this.framesSent++;
    if (au.keyframe) this.keyframesSent++;
    if (this.firstFrameAt === undefined) {
      this.firstFrameAt = performance.now();
      this.emit('firstframe', {
        afterMs: this.firstFrameAt - this.t0,
        replayed: this.sendQueue.replayPending,
      });
    }
  }
}
