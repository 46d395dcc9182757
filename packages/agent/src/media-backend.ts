/**
 * The agent's {@link MediaBackend} over {@link MediaHub} (one ffmpeg per camera, GOP cache, fan-out)
 * and ViewerPeer (libdatachannel, one per viewer session). The hub's ViewerSession is the one
 * object that owns a session: this module only adds the camera-down policy.
 *
 * - ICE servers come per session from the rendezvous `ready.ice` (STUN and short-lived TURN
 *   credentials).
 * - When a camera's ffmpeg dies, CameraSource restarts it with backoff and the hub re-synchronises
 *   every viewer at the new keyframe, so short hiccups need nothing from the viewer. When the camera
 *   stays down longer than `cameraDownGraceMs`, its sessions are closed with `E_CAMERA_OFFLINE`
 *   (the viewer gets `session/closed` and reconnects with backoff) and `cameras()` reports it offline
 *   until it produces a keyframe again. When the cause is that ffmpeg cannot be started at all
 *   (`ffmpeg-spawn`: not installed, not executable), the code is `E_CAMERA_UNAVAILABLE` instead, and
 *   later offers for that camera are refused with it at once, for as long as `ffmpeg -version`
 *   still cannot run (so a viewer is told, not answered with a stream that never comes).
 */
import type { MediaBackend } from './device/sessions.js';
import type { CameraConfig } from './media/cameras.js';
import {
  CAMERA_OFFLINE,
  CAMERA_UNAVAILABLE,
  MediaError,
  type MediaErrorCode,
  type MediaLogger,
  silentLogger,
} from './media/errors.js';
import { MediaHub, type MediaHubOptions, type MediaHubStats } from './media/hub.js';
import { checkTool } from './media/preflight.js';
import { StillMaker, type StillMakerOptions } from './media/still.js';
import type { PeerFactory } from './media/webrtc.js';

export { CAMERA_OFFLINE, CAMERA_UNAVAILABLE };

/** Options of {@link createMediaBackend}. */
export interface MediaBackendOptions {
  cameras: readonly CameraConfig[];
  log?: MediaLogger;
  /**
   * Bind ICE to this address only. libdatachannel offers every interface but loopback; set
   * `127.0.0.1` where loopback is all there is (the loopback demo, tests in a loopback namespace).
   */
  bindAddress?: string;
  /** Restrict the UDP ports ICE uses. */
  icePortRange?: readonly [number, number];
  /** ffmpeg and source tuning (paths, backoff, stop delay…). */
  source?: MediaHubOptions['source'];
  /** How long a camera may stay down before its viewers are told (ms). Default 8000. */
  cameraDownGraceMs?: number;
  /** A session whose peer never connects is closed after this long (ms). Default 30 000. */
  connectTimeoutMs?: number;
  /** The WebRTC stack per session (tests only: the werift control of the DTLS attack tests). */
  peerFactory?: PeerFactory;
  /** Sealed stills for viewers that ask (`session/still`): tuning, or false for none. */
  still?: false | Omit<StillMakerOptions, 'logger' | 'ffmpegPath'>;
}

/** A media backend that also owns its ffmpeg processes. */
export interface MediaBackendHandle extends MediaBackend {
  /** The underlying hub (stats, sources; for tests and status pages). */
  readonly hub: MediaHub;
  /** The JPEG maker of the stills (undefined when stills are off). */
  readonly stills: StillMaker | undefined;
  stats(): MediaHubStats;
  /** Close every session and stop every ffmpeg. */
  close(): Promise<void>;
}

/**
 * Create the agent's media backend for `cameras`. Warm cameras (the default) start their ffmpeg now
 * and keep it running until {@link MediaBackendHandle.close}; on-demand ones start on their first
 * viewer. A warm camera that fails is restarted with backoff and, after `cameraDownGraceMs`, listed
 * offline, with or without viewers.
 */
export function createMediaBackend(o: MediaBackendOptions): MediaBackendHandle {
  const log = o.log ?? silentLogger;
  const hub = new MediaHub(o.cameras, {
    logger: log,
    ...(o.source ? { source: o.source } : {}),
    ...(o.connectTimeoutMs !== undefined ? { connectTimeoutMs: o.connectTimeoutMs } : {}),
    ...(o.peerFactory ? { peerFactory: o.peerFactory } : {}),
    peer: {
      ...(o.bindAddress ? { bindAddress: o.bindAddress } : {}),
      ...(o.icePortRange ? { icePortRange: o.icePortRange } : {}),
    },
  });
  const grace = o.cameraDownGraceMs ?? 8_000;
  const down = new Map<string, NodeJS.Timeout | true>();
  /** The last error of each camera that is down. */
  const cause = new Map<string, MediaErrorCode>();
  let closed = false;
  const downCode = (camera: string) =>
    cause.get(camera) === 'ffmpeg-spawn' ? CAMERA_UNAVAILABLE : CAMERA_OFFLINE;
  const stills =
    o.still === false
      ? undefined
      : new StillMaker({
          ...o.still,
          logger: log,
          ...(o.source?.ffmpegPath ? { ffmpegPath: o.source.ffmpegPath } : {}),
        });

  const closeAll = (camera: string) => {
    const live = hub.sessionsOf(camera);
    const code = downCode(camera);
    if (live.length)
      log.warn({ camera, viewers: live.length, code }, 'camera still down: closing its viewer sessions');
    for (const s of live) void s.close(code);
  };

  for (const c of o.cameras) {
    const src = hub.source(c.name);
    src.on('error', (e: MediaError) => {
      if (closed) return;
      cause.set(c.name, e.reason);
      const d = down.get(c.name);
      if (d === true) return closeAll(c.name); // still failing: sessions opened meanwhile go too
      if (d !== undefined) return;
      log.warn({ camera: c.name, code: e.code, reason: e.reason }, 'camera down; ffmpeg is being restarted');
      const t = setTimeout(() => {
        if (closed || down.get(c.name) !== t) return;
        down.set(c.name, true);
        closeAll(c.name);
      }, grace);
      t.unref();
      down.set(c.name, t);
    });
    src.on('keyframe', () => {
      const d = down.get(c.name);
      if (d === undefined) return;
      if (d !== true) clearTimeout(d);
      down.delete(c.name);
      cause.delete(c.name);
      log.info({ camera: c.name }, 'camera back');
    });
  }

  return {
    hub,
    stills,
    ...(stills
      ? {
          // A cold camera (started by this very session) gets a short wait for its first keyframe.
          still: (camera: string) =>
            closed ? Promise.resolve(undefined) : stills.still(camera, hub.source(camera), 3_000),
        }
      : {}),
    cameras: () => o.cameras.map((c) => ({ name: c.name, online: down.get(c.name) !== true })),
    onRecording: (l) => hub.addRecordingListener(l),
    onCameraEvent: (l) => hub.addCameraEventListener(l),
    retention: (camera) => hub.retention(camera),
    async createViewerSession(camera, offerSdp, opts) {
      if (closed) throw new MediaError('session-closed', 'media backend is closed');
      if (down.has(camera) && cause.get(camera) === 'ffmpeg-spawn') {
        // ffmpeg could not be started: refuse at once while it still cannot (installed meanwhile: go on).
        const r = await checkTool(o.source?.ffmpegPath ?? 'ffmpeg');
        if (!r.ok)
          throw new MediaError('ffmpeg-spawn', `camera "${camera}": ffmpeg cannot be run (${r.reason})`);
      }
      const { answerSdp, session } = await hub.createViewerSession(camera, offerSdp, {
        ...(opts.sid ? { id: opts.sid } : {}),
        iceServers: opts.iceServers.map((s) => ({
          urls: s.urls,
          ...(s.username !== undefined ? { username: s.username } : {}),
          ...(s.credential !== undefined ? { credential: s.credential } : {}),
        })),
      });
      if (down.get(camera) === true) {
        // Answered while the camera is known to be down: give it one grace period to come back.
        const t = setTimeout(() => {
          if (down.get(camera) === true) void session.close(downCode(camera));
        }, grace);
        t.unref();
        void session.closed.then(() => clearTimeout(t));
      }
      return { answerSdp, session };
    },
    stats: () => hub.stats(),
    async close() {
      closed = true;
      for (const d of down.values()) if (d !== true) clearTimeout(d);
      await hub.close();
    },
  };
}
