/**
 * The agent's {@link MediaBackend} over {@link MediaHub} (one ffmpeg per camera, GOP cache, fan-out)
 * and {@link ViewerPeer} (werift, one per viewer session).
 *
 * - ICE servers come per session from the rendezvous `ready.ice` (STUN and short-lived TURN
 *   credentials) and are handed to werift as they are.
 * - When a camera's ffmpeg dies, CameraSource restarts it with backoff and the hub re-synchronises
 *   every viewer at the new keyframe, so short hiccups need nothing from the viewer. When the camera
 *   stays down longer than `cameraDownGraceMs`, its sessions are closed with `E_CAMERA_OFFLINE`
 *   (the viewer gets `session/closed` and reconnects with backoff) and `cameras()` reports it offline
 *   until it produces a keyframe again.
 */
import type { MediaBackend, MediaSession } from './device/sessions.js';
import type { CameraConfig } from './media/cameras.js';
import { MediaError, type MediaLogger, silentLogger } from './media/errors.js';
import { MediaHub, type MediaHubOptions, type MediaHubStats, type ViewerSession } from './media/hub.js';

/** Options of {@link createMediaBackend}. */
export interface MediaBackendOptions {
  cameras: readonly CameraConfig[];
  log?: MediaLogger;
  /**
   * Extra host addresses werift offers as candidates. werift skips loopback unless `127.0.0.1` is
   * listed here (ViewerPeer's default); pass `[]` to offer none.
   */
  iceAdditionalHostAddresses?: readonly string[];
  /** Restrict werift's UDP ports. */
  icePortRange?: readonly [number, number];
  /** ffmpeg and source tuning (paths, backoff, stop delay…). */
  source?: MediaHubOptions['source'];
  /** How long a camera may stay down before its viewers are told (ms). Default 8000. */
  cameraDownGraceMs?: number;
  /** A session whose peer never connects is closed after this long (ms). Default 30 000. */
  connectTimeoutMs?: number;
}

/** A media backend that also owns its ffmpeg processes. */
export interface MediaBackendHandle extends MediaBackend {
  /** The underlying hub (stats, sources; for tests and status pages). */
  readonly hub: MediaHub;
  stats(): MediaHubStats;
  /** Close every session and stop every ffmpeg. */
  close(): Promise<void>;
}

/** Camera offline code sent to viewers in `session/closed`. */
export const CAMERA_OFFLINE = 'E_CAMERA_OFFLINE';

interface Tracked {
  session: ViewerSession;
  closeCode?: string;
}

function candidateInit(
  c: unknown,
): { candidate: string; sdpMid?: string | null; sdpMLineIndex?: number | null } | undefined {
  if (typeof c !== 'object' || c === null) return undefined;
  const x = c as { candidate?: unknown; sdpMid?: unknown; sdpMLineIndex?: unknown };
  if (typeof x.candidate !== 'string' || x.candidate.length === 0 || x.candidate.length > 1024)
    return undefined;
  return {
    candidate: x.candidate,
    ...(typeof x.sdpMid === 'string' ? { sdpMid: x.sdpMid } : {}),
    ...(typeof x.sdpMLineIndex === 'number' ? { sdpMLineIndex: x.sdpMLineIndex } : {}),
  };
}

/** Create the agent's media backend for `cameras`. ffmpeg starts on the first viewer of a camera. */
export function createMediaBackend(o: MediaBackendOptions): MediaBackendHandle {
  const log = o.log ?? silentLogger;
  const hub = new MediaHub(o.cameras, {
    logger: log,
    ...(o.source ? { source: o.source } : {}),
    peer: {
      ...(o.iceAdditionalHostAddresses ? { iceAdditionalHostAddresses: o.iceAdditionalHostAddresses } : {}),
      ...(o.icePortRange ? { icePortRange: o.icePortRange } : {}),
    },
  });
  const grace = o.cameraDownGraceMs ?? 8_000;
  const down = new Map<string, NodeJS.Timeout | true>();
  const sessions = new Map<string, Set<Tracked>>();
  let closed = false;

  const closeAll = (camera: string) => {
    const live = [...(sessions.get(camera) ?? [])];
    if (live.length)
      log.warn({ camera, viewers: live.length }, 'camera still down: closing its viewer sessions');
    for (const s of live) {
      s.closeCode = CAMERA_OFFLINE;
      void s.session.close();
    }
  };

  for (const c of o.cameras) {
    sessions.set(c.name, new Set());
    const src = hub.source(c.name);
    src.on('error', (e: MediaError) => {
      if (closed) return;
      const d = down.get(c.name);
      if (d === true) return closeAll(c.name); // still failing: sessions opened meanwhile go too
      if (d !== undefined) return;
      log.warn({ camera: c.name, code: e.code }, 'camera down; ffmpeg is being restarted');
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
      log.info({ camera: c.name }, 'camera back');
    });
  }

  return {
    hub,
    cameras: () => o.cameras.map((c) => ({ name: c.name, online: down.get(c.name) !== true })),
    async createViewerSession(camera, offerSdp, opts) {
      if (closed) throw new MediaError('session-closed', 'media backend is closed');
      const created = await hub.createViewerSession(camera, offerSdp, {
        iceServers: opts.iceServers.map((s) => ({
          urls: s.urls,
          ...(s.username !== undefined ? { username: s.username } : {}),
          ...(s.credential !== undefined ? { credential: s.credential } : {}),
        })),
      });
      const tracked: Tracked = { session: created.session };
      const set = sessions.get(camera);
      set?.add(tracked);
      if (down.get(camera) === true) {
        // Answered while the camera is known to be down: give it one grace period to come back.
        const t = setTimeout(() => {
          if (down.get(camera) !== true || !set?.has(tracked)) return;
          tracked.closeCode = CAMERA_OFFLINE;
          void created.session.close();
        }, grace);
        t.unref();
      }
      let everConnected = created.session.peer.connectionState === 'connected';
      created.session.peer.on('state', (st) => {
        if (st === 'connected') everConnected = true;
      });
      const connectTimer = setTimeout(() => {
        if (everConnected) return;
        log.info({ camera }, 'viewer never connected: closing its session');
        void created.session.close();
      }, o.connectTimeoutMs ?? 30_000);
      connectTimer.unref();
      const closedCbs: ((code?: string) => void)[] = [];
      void created.session.closedPromise.then(() => {
        clearTimeout(connectTimer);
        set?.delete(tracked);
        for (const cb of closedCbs) cb(tracked.closeCode);
      });
      const session: MediaSession = {
        close: () => void created.session.close(),
        addIceCandidate: async (c) => {
          const init = candidateInit(c);
          if (init) await created.session.peer.addIceCandidate(init);
        },
        onClosed: (cb) => {
          closedCbs.push(cb);
        },
      };
      return { answerSdp: created.answerSdp, session };
    },
    stats: () => hub.stats(),
    async close() {
      closed = true;
      for (const d of down.values()) if (d !== true) clearTimeout(d);
      await hub.close();
    },
  };
}
