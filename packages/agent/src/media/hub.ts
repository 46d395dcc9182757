/**
 * MediaHub: the cameras of one agent and their viewers. One CameraSource (one ffmpeg) per camera,
 * shared by all its viewer sessions; one ViewerPeer per session.
 *
 * Warm cameras (the camera map's default) are started when the hub is created and run until
 * {@link MediaHub.close}, so their GOP cache always holds a keyframe and a first view is as fast as
 * any other. On-demand cameras start on their first viewer and stop `stopDelayMs` after the last.
 */
import { randomUUID } from 'node:crypto';
import type { ErrorCode } from '@hearth/protocol';
import type { RetentionConfig } from '../events/config.js';
import { ANALYSIS_HEIGHT, ANALYSIS_WIDTH, MotionDetector } from '../events/motion.js';
import { EventRecorder, type EventRecording, type RecorderOptions } from '../events/recorder.js';
import { CameraSource, type CameraSourceOptions, type CameraSourceStats } from './camera-source.js';
import type { CameraConfig } from './cameras.js';
import { MediaError, type MediaLogger, silentLogger } from './errors.js';
import { OnvifClient, type OnvifConfig } from './onvif.js';
import {
  type CandidateType,
  type IceServerConfig,
  type MediaPeer,
  type PeerFactory,
  ViewerPeer,
  type ViewerPeerOptions,
  type ViewerPeerStats,
} from './webrtc.js';

export interface MediaHubOptions {
  /** Per-source options for every camera (each camera's mode comes from its config). */
  readonly source?: Omit<CameraSourceOptions, 'logger' | 'cameraMode'>;
  readonly peer?: Omit<ViewerPeerOptions, 'logger' | 'label' | 'profileLevelId' | 'iceServers'>;
  /** Default ICE servers (STUN/TURN) for every session; per-session servers override. */
  readonly iceServers?: readonly IceServerConfig[];
  /**
   * For sources whose profile is unknown until their first SPS (copy mode), wait this long for it
   * before answering with the default 42e01f. Default 4000 ms.
   */
  readonly profileWaitMs?: number;
  readonly logger?: MediaLogger;
  /** Makes each viewer's peer. Default {@link ViewerPeer.create}; tests plug in other stacks. */
  readonly peerFactory?: PeerFactory;
  /** A session whose peer never connects is closed after this long (ms). Default 30 000. */
  readonly connectTimeoutMs?: number;
  /** Keyframe requests (ONVIF SetSynchronizationPoint) for cameras with an `onvif` config. */
  readonly keyframeRequest?: KeyframeRequestOptions;
  /** Called for each event a camera's detector finds (also logged). */
  readonly onCameraEvent?: (e: CameraEvent) => void;
  /** Called with each event's snapshot and clip (cameras with `motion`). */
  readonly onRecording?: (r: EventRecording) => void;
  /** ffmpeg path and limits of the snapshot and clip encodes (pre/post-roll come from the camera map). */
  readonly recorder?: Pick<RecorderOptions, 'ffmpegPath' | 'timeoutMs' | 'maxBytes'>;
}

/**
 * An event a camera's detector found. `kind` will also be `sound` once cameras carry audio (the
 * audio issue); `t`/`startedAt` are the camera stream's content time (ms), `at` the wall clock.
 */
export type CameraEvent =
  | {
      readonly camera: string;
      readonly kind: 'motion' | 'sound';
      readonly phase: 'start';
      /** Wall-clock ms of the trigger frame. */
      readonly at: number;
      readonly t: number;
      readonly score: number;
    }
  | {
      readonly camera: string;
      readonly kind: 'motion' | 'sound';
      readonly phase: 'end';
      /** Wall-clock ms of the last frame with motion. */
      readonly at: number;
      readonly t: number;
      readonly startedAt: number;
      readonly peak: number;
    };

/**
 * When a view starts on a cold stream (no keyframe cached: an on-demand camera whose ffmpeg just
 * started, or one that has not yet delivered a keyframe), the hub asks the camera for a keyframe
 * through ONVIF instead of waiting for its next scheduled one. The request goes out once ffmpeg has
 * analysed the stream (a keyframe sent before is dropped with the probed packets), is repeated every `retryMs`
 * while no keyframe arrives, at most `maxRequests` times per cold start, and never more than once per
 * `minIntervalMs` per camera. It never blocks nor fails the view; failures are logged (warn), and an
 * authentication failure holds the camera's requests back for `failureBackoffMs` (cameras lock
 * accounts after repeated failures).
 */
export interface KeyframeRequestOptions {
  /**
   * The request waits until the camera's ffmpeg has analysed the stream (its `playing` event),
   * or, should that never be seen, until it has run this long. Default 4000 ms.
   */
  readonly settleMs?: number;
  /** Default 2000 ms. */
  readonly retryMs?: number;
  /** Default 3. */
  readonly maxRequests?: number;
  /** Default 1000 ms. */
  readonly minIntervalMs?: number;
  /** Default 60 000 ms. */
  readonly failureBackoffMs?: number;
  /** Makes the camera's client (tests). Default {@link OnvifClient}. */
  readonly clientFactory?: (
    cfg: OnvifConfig,
    rtspUrl: string | undefined,
  ) => { setSynchronizationPoint(): Promise<void> };
}

interface KeyframeRequester {
  readonly client: { setSynchronizationPoint(): Promise<void> };
  /** performance.now() of the last request; a failure pushes it into the future. */
  nextAllowed: number;
  active: boolean;
  requests: number;
  failures: number;
}

export interface CreateSessionOptions {
  /**
   * The session's one ID: the viewer's `sid`. Logs, stats, the session manager and the viewer all
   * name the session by it. Default: a random ID (tests, benchmarks).
   */
  readonly id?: string;
  /** Per-session ICE servers, e.g. short-lived TURN credentials. */
  readonly iceServers?: readonly IceServerConfig[];
  readonly label?: string;
  /** See ViewerPeerOptions.replayCache (A/B benchmarks only). */
  readonly replayCache?: boolean;
}

/** Why a session closed, as the viewer is told (`session/closed {code}`); undefined: nothing to tell. */
export type SessionCloseCode = ErrorCode | undefined;

/**
 * One viewer's session, the single owner of its peer, its camera subscription and its close code.
 * Whoever closes it (the viewer, the ACL sweep, a dead camera, a failed handshake, a connect
 * timeout) calls {@link ViewerSession.close} with the code, and everyone waiting reads it from
 * {@link ViewerSession.closed}.
 */
export interface ViewerSession {
  readonly id: string;
  readonly camera: string;
  readonly peer: MediaPeer;
  /** Resolves once the session is closed, with its close code (the first one given wins). */
  readonly closed: Promise<SessionCloseCode>;
  /** Close with the code the viewer should be told (none: closed at its request, or quietly). */
  close(code?: ErrorCode): Promise<void>;
  /** A trickled remote candidate, checked for shape (bad ones are ignored). */
  addIceCandidate(c: unknown): Promise<void>;
  /**
   * Resolves once the peer connected, with the network path of its selected ICE candidate pair
   * (`relayed` when either end of it is a TURN relay candidate), or with undefined when the session
   * closed first or the pair could not be read.
   */
  readonly connected: Promise<NetworkPath | undefined>;
}

/** How a session's media travels: straight between the two ends, or through a TURN relay. */
export type NetworkPath = 'direct' | 'relayed';

/** The path of a selected candidate pair: relayed when either candidate is a relay's. */
export function pathOfPair(
  pair: { local: CandidateType; remote: CandidateType } | undefined,
): NetworkPath | undefined {
  if (!pair) return undefined;
  return pair.local === 'relay' || pair.remote === 'relay' ? 'relayed' : 'direct';
}

/** Close code of a session whose peer completed ICE but failed DTLS (a possible attack). */
export const DTLS_FAILED = 'E_DTLS_FAILED' satisfies ErrorCode;

function candidateInit(
  c: unknown,
): { candidate: string; sdpMid?: string | null; sdpMLineIndex?: number | null } | undefined {
  if (typeof c !== 'object' || c === null) return undefined;
  const x = c as { candidate?: unknown; sdpMid?: unknown; sdpMLineIndex?: unknown };
  if (typeof x.candidate !== 'string' || x.candidate.length === 0 || x.candidate.length > 1024)
    return undefined;
  return {
    candidate: x.candidate,
    ...(typeof x.sdpMid === 'string' && x.sdpMid.length <= 32 ? { sdpMid: x.sdpMid } : {}),
    ...(typeof x.sdpMLineIndex === 'number' ? { sdpMLineIndex: x.sdpMLineIndex } : {}),
  };
}

export interface MediaHubStats {
  /** ffmpeg processes currently running. */
  readonly ffmpegProcesses: number;
  readonly ffmpegPids: readonly number[];
  readonly viewers: Readonly<Record<string, number>>;
  readonly cameras: readonly CameraSourceStats[];
  readonly sessions: readonly ({ id: string; camera: string } & ViewerPeerStats)[];
  /** Peers that completed ICE but failed DTLS since start: possible attacks (also logged). */
  readonly possibleAttacks: number;
  /** Per camera with detection: events so far, one running now, last frame's changed share. */
  readonly motion: Readonly<
    Record<
      string,
      { events: number; active: boolean; score: number; recording: boolean; recorded: number; failed: number }
    >
  >;
}

export class MediaHub {
  private readonly sources = new Map<string, CameraSource>();
  private readonly sessions = new Map<string, ViewerSession>();
  private readonly opts: MediaHubOptions;
  private readonly log: MediaLogger;
  private closed = false;
  private possibleAttacks = 0;
  private readonly keyframeRequesters = new Map<string, KeyframeRequester>();
  private readonly detectors = new Map<string, { d: MotionDetector; r: EventRecorder; events: number }>();
  private readonly recordingListeners: ((r: EventRecording) => void)[] = [];
  private readonly cameraEventListeners: ((e: CameraEvent) => void)[] = [];
  private readonly retentions = new Map<string, RetentionConfig>();

  constructor(cameras: readonly CameraConfig[], opts: MediaHubOptions = {}) {
    this.opts = opts;
    this.log = opts.logger ?? silentLogger;
    for (const c of cameras) {
      const motion = c.motion;
      if (c.retention) this.retentions.set(c.name, c.retention);
      const src = new CameraSource(c.name, c.source, {
        ...opts.source,
        // Detection needs the stream all the time: a camera with motion runs warm.
        cameraMode: motion ? 'warm' : (c.mode ?? 'warm'),
        logger: this.log,
        ...(c.onvif ? { detectPlaying: true } : {}),
        ...(motion ? { analysis: { fps: motion.fps, width: ANALYSIS_WIDTH, height: ANALYSIS_HEIGHT } } : {}),
      });
      if (motion)
        this.watchMotion(
          c.name,
          src,
          new MotionDetector(motion),
          new EventRecorder(
            c.name,
            (r) => {
              this.log.info(
                {
                  camera: c.name,
                  bytes: r.clip.length,
                  frames: r.frames,
                  snapshot: r.snapshot !== undefined,
                },
                'event recorded',
              );
              for (const l of [this.opts.onRecording, ...this.recordingListeners])
                try {
                  l?.(r);
                } catch (err) {
                  this.log.error({ camera: c.name, err: String(err) }, 'recording listener threw');
                }
            },
            {
              ...opts.recorder,
              preRollMs: motion.preRollMs,
              postRollMs: motion.postRollMs,
              maxClipMs: motion.maxClipMs,
              leadMs: motion.minDurationMs + 1000,
              logger: this.log,
            },
          ),
        );
      src.on('error', (e) => this.log.warn({ camera: c.name, code: e.code, reason: e.reason }, e.message));
      src.on('restarted', () => {
        for (const s of this.sessions.values()) if (s.camera === c.name) s.peer.resync();
      });
      this.sources.set(c.name, src);
      if (c.onvif) {
        const rtspUrl = c.source.kind === 'rtsp' ? c.source.secretUrl() : undefined;
        try {
          const make =
            opts.keyframeRequest?.clientFactory ??
            ((cfg: OnvifConfig, u: string | undefined) => new OnvifClient(cfg, u ? { rtspUrl: u } : {}));
          this.keyframeRequesters.set(c.name, {
            client: make(c.onvif, rtspUrl),
            nextAllowed: 0,
            active: false,
            requests: 0,
            failures: 0,
          });
        } catch (e) {
          const reason = e instanceof MediaError ? e.reason : 'onvif-config';
          this.log.warn({ camera: c.name, reason }, 'ONVIF client not usable; no keyframe requests');
        }
      }
    }
    // Warm cameras run from now on. ffmpeg is spawned asynchronously (after a probe for file/rtsp),
    // so listeners attached right after construction see every event.
    for (const src of this.sources.values()) src.start();
  }

  /** Also call `l` with each recording (the agent's events pipeline); returns its removal. */
  addRecordingListener(l: (r: EventRecording) => void): () => void {
    this.recordingListeners.push(l);
    return () => {
      const i = this.recordingListeners.indexOf(l);
      if (i >= 0) this.recordingListeners.splice(i, 1);
    };
  }

  /** Also call `l` with each camera event (motion start and end; the agent's notifications). */
  addCameraEventListener(l: (e: CameraEvent) => void): () => void {
    this.cameraEventListeners.push(l);
    return () => {
      const i = this.cameraEventListeners.indexOf(l);
      if (i >= 0) this.cameraEventListeners.splice(i, 1);
    };
  }

  /** A camera's `retention` from the camera map (undefined: the defaults). */
  retention(camera: string): RetentionConfig | undefined {
    return this.retentions.get(camera);
  }

  private watchMotion(camera: string, src: CameraSource, d: MotionDetector, r: EventRecorder): void {
    const entry = { d, r, events: 0 };
    this.detectors.set(camera, entry);
    src.on('au', (au) => r.push(au));
    src.on('gray', (f) => {
      const now = Date.now();
      for (const e of d.push(f)) {
        const ev: CameraEvent =
          e.type === 'start'
            ? { camera, kind: 'motion', phase: 'start', at: now - (f.t - e.t), t: e.t, score: e.score }
            : {
                camera,
                kind: 'motion',
                phase: 'end',
                at: now - (f.t - e.t),
                t: e.t,
                startedAt: e.startedAt,
                peak: e.peak,
              };
        if (e.type === 'start') {
          entry.events++;
          r.start(ev.kind, ev.at);
        } else r.end(ev.at);
        this.log.info({ camera, kind: ev.kind, phase: ev.phase, t: ev.t }, `motion ${ev.phase}`);
        for (const l of [this.opts.onCameraEvent, ...this.cameraEventListeners])
          try {
            l?.(ev);
          } catch (err) {
            this.log.error({ camera, err: String(err) }, 'camera event listener threw');
          }
      }
    });
  }

  cameraNames(): string[] {
    return [...this.sources.keys()];
  }

  /** The camera's source (to listen to `restarted`/`error`, or for tests). */
  source(camera: string): CameraSource {
    const s = this.sources.get(camera);
    if (!s) throw new MediaError('unknown-camera', `unknown camera "${String(camera).slice(0, 40)}"`);
    return s;
  }

  /**
   * Answers a viewer's offer for a camera. The camera's ffmpeg starts (or is reused) at once; the
   * viewer gets the cached GOP first, then live frames.
   */
  async createViewerSession(
    camera: string,
    offerSdp: string,
    opts: CreateSessionOptions = {},
  ): Promise<{ answerSdp: string; session: ViewerSession }> {
    if (this.closed) throw new MediaError('session-closed', 'media hub is closed');
    const src = this.source(camera);
    const id = opts.id ?? randomUUID();
    if (this.sessions.has(id)) throw new MediaError('bad-offer', 'a session with this ID is open');
    const label = opts.label ?? `${camera}/${id.slice(0, 8)}`;
    // Subscribe first: a cold camera starts while ICE and DTLS run. Units arriving before the peer
    // exists are buffered here (from the latest keyframe only).
    let peer: MediaPeer | undefined;
    const early: {
      snapshot: ReturnType<CameraSource['snapshot']>;
      live: Parameters<MediaPeer['push']>[0][];
    } = {
      snapshot: { units: [], truncated: false },
      live: [],
    };
    const sub = src.subscribe((au) => {
      if (peer) peer.push(au);
      else if (au.keyframe) early.live = [au];
      else if (early.live.length > 0 || early.snapshot.units.length > 0) early.live.push(au);
    });
    early.snapshot = sub.snapshot;
    // The GOP cache starts at a keyframe: empty means this view would wait for the camera's next one.
    if (sub.snapshot.units.length === 0) this.requestKeyframe(camera, src);
    try {
      let profile = src.profileLevelId();
      if (!profile && src.mode !== 'transcode' && src.spec.kind !== 'testsrc') {
        await src.waitForKeyframe(this.opts.profileWaitMs ?? 4000).catch(() => undefined);
        profile = src.profileLevelId();
      }
      const iceServers = opts.iceServers ?? this.opts.iceServers;
      const factory: PeerFactory = this.opts.peerFactory ?? ((sdp, o) => ViewerPeer.create(sdp, o));
      peer = await factory(offerSdp, {
        ...this.opts.peer,
        ...(iceServers ? { iceServers } : {}),
        ...(profile ? { profileLevelId: profile } : {}),
        ...(opts.replayCache !== undefined ? { replayCache: opts.replayCache } : {}),
        logger: this.log,
        label,
      });
    } catch (e) {
      sub.unsubscribe();
      throw e;
    }
    const p = peer;
    if (opts.replayCache === false) {
      // A/B baseline: only what comes after the answer, from the next keyframe.
    } else if (early.live[0]?.keyframe) {
      // A keyframe arrived while answering: it supersedes the snapshot.
      p.start({ units: early.live, truncated: false });
    } else {
      p.start(early.snapshot);
      for (const au of early.live) p.push(au);
    }
    let resolveClosed!: (code: SessionCloseCode) => void;
    let closeCode: SessionCloseCode;
    let closing = false;
    const closed = new Promise<SessionCloseCode>((r) => {
      resolveClosed = r;
    });
    const connected = new Promise<NetworkPath | undefined>((resolve) => {
      const settle = () => {
        p.selectedCandidatePair().then(
          (pair) => resolve(pathOfPair(pair)),
          () => resolve(undefined),
        );
      };
      if (p.connectionState === 'connected') settle();
      else
        p.on('state', (st) => {
          if (st === 'connected') settle();
        });
      p.once('closed', () => resolve(undefined));
      void closed.then(() => resolve(undefined));
    });
    const session: ViewerSession = {
      id,
      camera,
      peer: p,
      closed,
      connected,
      close: async (code?: ErrorCode) => {
        if (!closing) {
          closing = true;
          closeCode = code;
        }
        await p.close();
      },
      addIceCandidate: async (c) => {
        const init = candidateInit(c);
        if (init) await p.addIceCandidate(init);
      },
    };
    let everConnected = p.connectionState === 'connected';
    p.on('state', (st) => {
      if (st === 'connected') everConnected = true;
    });
    const connectTimer = setTimeout(() => {
      if (everConnected || p.closed) return;
      this.log.info({ camera, session: id }, 'viewer never connected: closing its session');
      void session.close();
    }, this.opts.connectTimeoutMs ?? 30_000);
    connectTimer.unref();
    p.once('dtlsfailed', ({ afterMs }) => {
      this.possibleAttacks++;
      this.log.warn(
        { camera, session: id, afterMs: Math.round(afterMs), possibleAttack: true },
        'possible attack: the media peer completed ICE but failed the DTLS handshake for the signed fingerprint; nothing was sent',
      );
      void session.close(DTLS_FAILED);
    });
    p.once('closed', () => {
      clearTimeout(connectTimer);
      sub.unsubscribe();
      this.sessions.delete(id);
      this.log.info(
        { camera, session: id, ...(closeCode ? { code: closeCode } : {}) },
        'viewer session closed',
      );
      resolveClosed(closeCode);
    });
    this.sessions.set(id, session);
    this.log.info({ camera, session: id }, 'viewer session created');
    return { answerSdp: p.answerSdp, session };
  }

  /**
   * Asks a cold camera for a keyframe (ONVIF), see {@link KeyframeRequestOptions}. Fire and forget:
   * nothing here can fail or delay the view.
   */
  private requestKeyframe(camera: string, src: CameraSource): void {
    const kr = this.keyframeRequesters.get(camera);
    if (!kr || kr.active || this.closed) return;
    kr.active = true;
    const o = this.opts.keyframeRequest ?? {};
    const settleMs = o.settleMs ?? 4000;
    const retryMs = o.retryMs ?? 2000;
    const maxRequests = o.maxRequests ?? 3;
    const minIntervalMs = o.minIntervalMs ?? 1000;
    let sent = 0;
    let timer: NodeJS.Timeout | undefined;
    let over = false;
    const later = (ms: number, f: () => void): void => {
      timer = setTimeout(f, Math.max(0, ms));
      timer.unref();
    };
    const done = (): void => {
      if (over) return;
      over = true;
      kr.active = false;
      if (timer) clearTimeout(timer);
      src.off('keyframe', done);
      src.off('playing', fire);
    };
    src.once('keyframe', done);
    const fire = (): unknown => {
      if (over) return;
      if (timer) clearTimeout(timer);
      src.off('playing', fire);
      if (this.closed || src.subscriberCount === 0 || src.snapshot().units.length > 0) return done();
      if (sent >= maxRequests) return done();
      const age = src.runningForMs();
      if (!src.playing && (age === undefined || age < settleMs)) {
        // Wait until ffmpeg passes packets on (or, should it never say so, settleMs after its start).
        src.once('playing', fire);
        return later(age === undefined ? 250 : settleMs - age, fire);
      }
      const now = performance.now();
      if (now < kr.nextAllowed) return later(kr.nextAllowed - now, fire);
      kr.nextAllowed = now + minIntervalMs;
      sent++;
      kr.requests++;
      const attempt = sent;
      // Through a promise: even a client that throws synchronously cannot reach the view.
      Promise.resolve()
        .then(() => kr.client.setSynchronizationPoint())
        .then(
          () => this.log.debug?.({ camera, attempt }, 'ONVIF keyframe requested'),
          (e: unknown) => {
            kr.failures++;
            const reason = e instanceof MediaError ? e.reason : 'onvif-error';
            const code = e instanceof MediaError ? e.code : 'E_INTERNAL';
            const msg = e instanceof MediaError ? e.message : 'ONVIF request failed';
            if (reason === 'onvif-unauthorized' || reason === 'onvif-config') {
              kr.nextAllowed = performance.now() + (o.failureBackoffMs ?? 60_000);
            }
            this.log.warn({ camera, code, reason, attempt }, `ONVIF keyframe request failed: ${msg}`);
            done();
          },
        );
      later(retryMs, fire);
    };
    fire();
  }

  /** Keyframe requests per camera with ONVIF: sent, failed. */
  keyframeRequestStats(camera: string): { requests: number; failures: number } | undefined {
    const kr = this.keyframeRequesters.get(camera);
    return kr ? { requests: kr.requests, failures: kr.failures } : undefined;
  }

  /** The open sessions of one camera. */
  sessionsOf(camera: string): ViewerSession[] {
    return [...this.sessions.values()].filter((s) => s.camera === camera);
  }

  stats(): MediaHubStats {
    const cameras = [...this.sources.values()].map((s) => s.stats());
    const viewers: Record<string, number> = {};
    for (const c of this.sources.keys()) viewers[c] = 0;
    for (const s of this.sessions.values()) viewers[s.camera] = (viewers[s.camera] ?? 0) + 1;
    const pids = cameras.filter((c) => c.running && c.pid !== undefined).map((c) => c.pid as number);
    return {
      ffmpegProcesses: pids.length,
      ffmpegPids: pids,
      viewers,
      cameras,
      sessions: [...this.sessions.values()].map((s) => ({ id: s.id, camera: s.camera, ...s.peer.stats() })),
      possibleAttacks: this.possibleAttacks,
      motion: Object.fromEntries(
        [...this.detectors].map(([c, e]) => [
          c,
          {
            events: e.events,
            active: e.d.active,
            score: e.d.lastScore,
            recording: e.r.recording,
            recorded: e.r.recorded,
            failed: e.r.failed,
          },
        ]),
      ),
    };
  }

  /** Closes every session and stops every ffmpeg. */
  async close(): Promise<void> {
    this.closed = true;
    for (const e of this.detectors.values()) e.r.close();
    await Promise.all([...this.sessions.values()].map((s) => s.close()));
    await Promise.all([...this.sources.values()].map((s) => s.close()));
  }
}
