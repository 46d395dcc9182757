/**
 * TEST ONLY: the agent's former WebRTC peer on werift 0.24, kept as the deliberately broken DTLS
 * verifier of the attack tests' controls (werift accepts a peer that replays the viewer's
 * certificate without its key) and as the old stack in the T9 benchmark. The product uses
 * src/media/webrtc.ts (libdatachannel).
 *
 * One viewer's WebRTC peer (werift): answers a browser's recvonly H.264 offer with a sendonly H.264
 * answer, then sends the camera's access units as RTP (RFC 6184). A new peer starts with the cached
 * GOP (from its IDR with SPS/PPS), paced, then continues live, so the first frame never waits for the
 * camera's next keyframe.
 *
 * RTP timestamps are the 90 kHz wall clock at the moment each access unit is handed to the sender
 * (strictly increasing). The Annex-B pipe carries no timestamps; for the replayed GOP this makes the
 * frames' timestamps match their (paced) arrival, so the browser's jitter estimate stays calm and the
 * replay plays out quickly up to live instead of lagging a GOP behind.
 */
import { randomInt } from 'node:crypto';
import { EventEmitter } from 'node:events';
import {
  MediaStreamTrack,
  RTCPeerConnection,
  RTCRtpCodecParameters,
  type RTCRtpTransceiver,
  RtpHeader,
  RtpPacket,
} from 'werift';
import type { AccessUnit, GopSnapshot } from '../../src/media/annexb.js';
import { MediaError, type MediaLogger, silentLogger } from '../../src/media/errors.js';
import { DEFAULT_MAX_PAYLOAD, packetizeAccessUnit } from '../../src/media/rtp-h264.js';
import {
  chooseH264,
  offeredH264,
  restrictVideoToPayloadType,
  sdpFingerprint,
} from '../../src/media/sdp-h264.js';
import { SendQueue } from '../../src/media/send-queue.js';
import type {
  CandidateType,
  MediaPeer,
  PeerConnectionState,
  PeerEvents,
  PeerFactory,
  ViewerPeerOptions as ProductPeerOptions,
  ViewerPeerStats as ProductPeerStats,
} from '../../src/media/webrtc.js';

/** The product peer's options, plus werift's own way to offer loopback candidates. */
export interface ViewerPeerOptions extends ProductPeerOptions {
  /** Default `['127.0.0.1']` so loopback works (werift skips loopback otherwise). */
  readonly iceAdditionalHostAddresses?: readonly string[];
}

/** The product peer's stats, plus werift's per-packet counters. */
export interface ViewerPeerStats extends ProductPeerStats {
  readonly packetsSent: number;
  readonly pliReceived: number;
}

const H264_FEEDBACK = [
  { type: 'nack' },
  { type: 'nack', parameter: 'pli' },
  { type: 'ccm', parameter: 'fir' },
  { type: 'goog-remb' },
];

export class WeriftPeer extends EventEmitter<PeerEvents> {
  readonly pc: RTCPeerConnection;
  private readonly transceiver: RTCRtpTransceiver;
  private readonly opts: ViewerPeerOptions;
  private readonly log: MediaLogger;
  private readonly t0 = performance.now();
  private answer = '';
  private connected = false;
  private readonly sendQueue: SendQueue;
  private isClosed = false;
  private seq = randomInt(0, 0xffff);
  private readonly tsBase = randomInt(0, 0x7fffffff);
  private lastTs = -1;
  private framesSent = 0;
  private keyframesSent = 0;
  private packetsSent = 0;
  private bytesSent = 0;
  private pliReceived = 0;
  private connectedAt: number | undefined;
  private firstFrameAt: number | undefined;

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
    const profile = (opts.profileLevelId ?? '42e01f').toLowerCase();
    this.pc = new RTCPeerConnection({
      codecs: {
        audio: [],
        video: [
          new RTCRtpCodecParameters({
            mimeType: 'video/H264',
            clockRate: 90000,
            rtcpFeedback: H264_FEEDBACK,
            parameters: `level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=${profile}`,
          }),
        ],
      },
      iceServers: (opts.iceServers ?? []).map((s) => ({
        urls: typeof s.urls === 'string' ? s.urls : [...s.urls],
        ...(s.username !== undefined ? { username: s.username } : {}),
        ...(s.credential !== undefined ? { credential: s.credential } : {}),
      })),
      iceAdditionalHostAddresses: [...(opts.iceAdditionalHostAddresses ?? ['127.0.0.1'])],
      ...(opts.iceTransportPolicy ? { iceTransportPolicy: opts.iceTransportPolicy } : {}),
      ...(opts.icePortRange
        ? { icePortRange: [opts.icePortRange[0], opts.icePortRange[1]] as [number, number] }
        : {}),
    });
    const track = new MediaStreamTrack({ kind: 'video' });
    this.transceiver = this.pc.addTransceiver(track, { direction: 'sendonly' });
    this.pc.connectionStateChange.subscribe((s) => {
      this.log.debug?.({ peer: opts.label, state: s }, 'peer state');
      this.emit('state', s);
      if (s === 'connected' && !this.connected) {
        this.connected = true;
        this.connectedAt = performance.now();
        this.sendQueue.opened();
      }
      if (s === 'failed' || s === 'closed') void this.close();
    });
    this.pc.onIceCandidate.subscribe((c) => {
      const j = c?.toJSON();
      this.emit(
        'icecandidate',
        j
          ? {
              candidate: j.candidate ?? '',
              ...(j.sdpMid != null ? { sdpMid: j.sdpMid } : {}),
              ...(j.sdpMLineIndex != null ? { sdpMLineIndex: j.sdpMLineIndex } : {}),
            }
          : undefined,
      );
    });
    this.transceiver.sender.onPictureLossIndication.subscribe(() => {
      this.pliReceived++;
    });
  }

  /**
   * Creates the peer for a browser offer and returns it with its answer (`peer.answerSdp`). The
   * offer must have a video m-section with H.264 packetization-mode=1.
   */
  static async create(offerSdp: string, opts: ViewerPeerOptions = {}): Promise<WeriftPeer> {
    if (typeof offerSdp !== 'string' || !offerSdp.startsWith('v=0') || offerSdp.length > 64 * 1024) {
      throw new MediaError('bad-offer', 'offer is not an SDP of at most 64 KiB');
    }
    const choice = chooseH264(offeredH264(offerSdp), opts.profileLevelId ?? '42e01f');
    const peer = new WeriftPeer({
      ...opts,
      profileLevelId: choice.profileLevelId ?? opts.profileLevelId ?? '42e01f',
    });
    try {
      await peer.pc.setRemoteDescription({
        type: 'offer',
        sdp: restrictVideoToPayloadType(offerSdp, choice.pt),
      });
      // An offer with a=setup:active must be answered passive (RFC 5763 5): be the DTLS server.
      // werift 0.24 answers active whatever the offer says (two DTLS clients then never connect),
      // so the attack tests' controls could not exercise werift's DTLS server without this. It
      // changes the role only, not what werift verifies.
      if (/^a=setup:active\r?$/m.test(offerSdp)) {
        for (const t of peer.pc.dtlsTransports) t.role = 'server';
      }
      const answer = await peer.pc.createAnswer();
      await peer.pc.setLocalDescription(answer);
      if (opts.waitForGathering !== false) await peer.waitGathering(opts.gatherTimeoutMs ?? 3000);
      peer.answer = peer.pc.localDescription?.sdp ?? answer.sdp;
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

  /** The answer SDP (sendonly H.264; carries `a=fingerprint:sha-256`). */
  get answerSdp(): string {
    return this.answer;
  }

  get connectionState(): PeerConnectionState {
    return this.pc.connectionState;
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
    await this.pc.addIceCandidate({
      candidate: c.candidate,
      ...(c.sdpMid != null ? { sdpMid: c.sdpMid } : {}),
      ...(c.sdpMLineIndex != null ? { sdpMLineIndex: c.sdpMLineIndex } : {}),
    });
  }

  /** Types of the selected (nominated) candidate pair, once connected. */
  async selectedCandidatePair(): Promise<{ local: CandidateType; remote: CandidateType } | undefined> {
    const report = await this.pc.getStats();
    const all = [...(report as unknown as Map<string, Record<string, unknown>>).values()];
    const transport = all.find(
      (s) => s.type === 'transport' && typeof s.selectedCandidatePairId === 'string',
    );
    const pair = all.find((s) => s.type === 'candidate-pair' && s.id === transport?.selectedCandidatePairId);
    if (!pair) return undefined;
    const local = all.find((s) => s.id === pair.localCandidateId)?.candidateType;
    const remote = all.find((s) => s.id === pair.remoteCandidateId)?.candidateType;
    if (typeof local !== 'string' || typeof remote !== 'string') return undefined;
    return { local: local as CandidateType, remote: remote as CandidateType };
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
      packetsSent: this.packetsSent,
      bytesSent: this.bytesSent,
      framesDropped: this.sendQueue.framesDropped,
      pliReceived: this.pliReceived,
      replayedFrames: this.sendQueue.replayedFrames,
      dtlsFailed: false,
      connectedAfterMs: this.connectedAt === undefined ? undefined : this.connectedAt - this.t0,
      firstFrameAfterMs: this.firstFrameAt === undefined ? undefined : this.firstFrameAt - this.t0,
      unitsLostNotOpen: 0,
    };
  }

  async close(): Promise<void> {
    if (this.isClosed) return;
    this.isClosed = true;
    this.sendQueue.close();
    try {
      await this.pc.close();
    } catch {
      // already closing
    }
    this.emit('closed');
  }

  private waitGathering(timeoutMs: number): Promise<void> {
    if (this.pc.iceGatheringState === 'complete') return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(done, timeoutMs);
      const sub = this.pc.iceGatheringStateChange.subscribe((s) => {
        if (s === 'complete') done();
      });
      function done(): void {
        clearTimeout(t);
        sub.unSubscribe();
        resolve();
      }
    });
  }

  private sendAccessUnit(au: AccessUnit): void {
    const sender = this.transceiver.sender;
    let ts = (this.tsBase + Math.round(performance.now() * 90)) >>> 0;
    if (this.lastTs >= 0 && (ts - this.lastTs) >>> 0 > 0x7fffffff) ts = (this.lastTs + 1) >>> 0;
    if (ts === this.lastTs) ts = (ts + 1) >>> 0;
    this.lastTs = ts;
    const payloadType = sender.codec?.payloadType ?? 96;
    for (const { payload, marker } of packetizeAccessUnit(
      au.nals,
      this.opts.maxPayload ?? DEFAULT_MAX_PAYLOAD,
    )) {
      const header = new RtpHeader({ payloadType, marker, sequenceNumber: this.seq, timestamp: ts });
      this.seq = (this.seq + 1) & 0xffff;
      void sender.sendRtp(new RtpPacket(header, payload)).catch(() => undefined);
      this.packetsSent++;
      this.bytesSent += payload.length;
    }
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

/** A {@link PeerFactory} for MediaHub that answers with werift (loopback candidates when asked to bind there). */
export const weriftPeerFactory: PeerFactory = async (offerSdp, o) =>
  WeriftPeer.create(offerSdp, {
    ...o,
    iceAdditionalHostAddresses: o.bindAddress ? [o.bindAddress] : ['127.0.0.1'],
  }) as unknown as Promise<MediaPeer>;
