/**
 * MediaHub: the cameras of one agent and their viewers. One CameraSource (one ffmpeg) per camera,
 * shared by all its viewer sessions; one ViewerPeer per session.
 */
import { randomUUID } from 'node:crypto';
import { CameraSource, type CameraSourceOptions, type CameraSourceStats } from './camera-source.js';
import type { CameraConfig } from './cameras.js';
import { MediaError, type MediaLogger, silentLogger } from './errors.js';
import { type IceServerConfig, ViewerPeer, type ViewerPeerOptions, type ViewerPeerStats } from './webrtc.js';

export interface MediaHubOptions {
  readonly source?: Omit<CameraSourceOptions, 'logger'>;
  readonly peer?: Omit<ViewerPeerOptions, 'logger' | 'label' | 'profileLevelId' | 'iceServers'>;
  /** Default ICE servers (STUN/TURN) for every session; per-session servers override. */
  readonly iceServers?: readonly IceServerConfig[];
  /**
   * For sources whose profile is unknown until their first SPS (copy mode), wait this long for it
   * before answering with the default 42e01f. Default 4000 ms.
   */
  readonly profileWaitMs?: number;
  readonly logger?: MediaLogger;
}

export interface CreateSessionOptions {
  /** Per-session ICE servers, e.g. short-lived TURN credentials. */
  readonly iceServers?: readonly IceServerConfig[];
  readonly label?: string;
  /** See ViewerPeerOptions.replayCache (A/B benchmarks only). */
  readonly replayCache?: boolean;
}

export interface ViewerSession {
  readonly id: string;
  readonly camera: string;
  readonly peer: ViewerPeer;
  /** Resolves once the peer is closed (by close(), a failed connection, or hub.close()). */
  readonly closedPromise: Promise<void>;
  close(): Promise<void>;
}

export interface MediaHubStats {
  /** ffmpeg processes currently running. */
  readonly ffmpegProcesses: number;
  readonly ffmpegPids: readonly number[];
  readonly viewers: Readonly<Record<string, number>>;
  readonly cameras: readonly CameraSourceStats[];
  readonly sessions: readonly ({ id: string; camera: string } & ViewerPeerStats)[];
}

export class MediaHub {
  private readonly sources = new Map<string, CameraSource>();
  private readonly sessions = new Map<string, ViewerSession>();
  private readonly opts: MediaHubOptions;
  private readonly log: MediaLogger;
  private closed = false;

  constructor(cameras: readonly CameraConfig[], opts: MediaHubOptions = {}) {
    this.opts = opts;
    this.log = opts.logger ?? silentLogger;
    for (const c of cameras) {
      const src = new CameraSource(c.name, c.source, { ...opts.source, logger: this.log });
      src.on('error', (e) => this.log.warn({ camera: c.name, code: e.code }, e.message));
      src.on('restarted', () => {
        for (const s of this.sessions.values()) if (s.camera === c.name) s.peer.resync();
      });
      this.sources.set(c.name, src);
    }
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
    const id = randomUUID();
    const label = opts.label ?? `${camera}/${id.slice(0, 8)}`;
    // Subscribe first: a cold camera starts while ICE and DTLS run. Units arriving before the peer
    // exists are buffered here (from the latest keyframe only).
    let peer: ViewerPeer | undefined;
    const early: {
      snapshot: ReturnType<CameraSource['snapshot']>;
      live: Parameters<ViewerPeer['push']>[0][];
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
    try {
      let profile = src.profileLevelId();
      if (!profile && src.mode !== 'transcode' && src.spec.kind !== 'testsrc') {
        await src.waitForKeyframe(this.opts.profileWaitMs ?? 4000).catch(() => undefined);
        profile = src.profileLevelId();
      }
      const iceServers = opts.iceServers ?? this.opts.iceServers;
      peer = await ViewerPeer.create(offerSdp, {
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
    let resolveClosed!: () => void;
    const closedPromise = new Promise<void>((r) => {
      resolveClosed = r;
    });
    const session: ViewerSession = {
      id,
      camera,
      peer: p,
      closedPromise,
      close: async () => {
        await p.close();
      },
    };
    p.once('closed', () => {
      sub.unsubscribe();
      this.sessions.delete(id);
      this.log.info({ camera, session: id }, 'viewer session closed');
      resolveClosed();
    });
    this.sessions.set(id, session);
    this.log.info({ camera, session: id }, 'viewer session created');
    return { answerSdp: p.answerSdp, session };
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
    };
  }

  /** Closes every session and stops every ffmpeg. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.sessions.values()].map((s) => s.close()));
    await Promise.all([...this.sources.values()].map((s) => s.close()));
  }
}
