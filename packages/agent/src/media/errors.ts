/** Typed errors of the media side. `code` is stable (tests and callers match on it); messages never hold secrets. */
export type MediaErrorCode =
  | 'config-too-large'
  | 'config-yaml'
  | 'config-shape'
  | 'too-many-cameras'
  | 'camera-name'
  | 'camera-source'
  | 'camera-config'
  | 'camera-mode'
  | 'source-too-long'
  | 'unsupported-scheme'
  | 'bad-url'
  | 'bad-option'
  | 'secret-env-missing'
  | 'secret-file'
  | 'nal-too-large'
  | 'ffmpeg-spawn'
  | 'ffmpeg-exited'
  | 'probe-failed'
  | 'unknown-camera'
  | 'no-h264-in-offer'
  | 'bad-offer'
  | 'session-closed'
  | 'source-timeout'
  | 'camera-onvif'
  | 'onvif-config'
  | 'onvif-response'
  | 'onvif-fault'
  | 'onvif-unauthorized'
  | 'onvif-http'
  | 'onvif-timeout'
  | 'onvif-network'
  | 'onvif-too-large';

export class MediaError extends Error {
  readonly code: MediaErrorCode;
  constructor(code: MediaErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'MediaError';
    this.code = code;
  }
}

/** Sent to viewers (`session/refused`, `session/closed`) when a camera's source stays down. Transient. */
export const CAMERA_OFFLINE = 'E_CAMERA_OFFLINE';
/**
 * Sent to viewers when the agent cannot run the camera's pipeline at all (ffmpeg cannot be started:
 * not installed, not executable). Needs the operator: the viewer stops retrying and says so.
 */
export const CAMERA_UNAVAILABLE = 'E_CAMERA_UNAVAILABLE';

/**
 * The wire code a viewer is told for a media failure: `E_CAMERA_UNAVAILABLE` when ffmpeg cannot be
 * started, `E_CAMERA_OFFLINE` when the source does not deliver, else undefined (the caller's generic code).
 */
export function mediaWireCode(code: MediaErrorCode): string | undefined {
  switch (code) {
    case 'ffmpeg-spawn':
      return CAMERA_UNAVAILABLE;
    case 'ffmpeg-exited':
    case 'probe-failed':
    case 'source-timeout':
      return CAMERA_OFFLINE;
    default:
      return undefined;
  }
}

/** Minimal structured logger (pino-compatible subset). */
export interface MediaLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  debug?(obj: object, msg?: string): void;
}

export const silentLogger: MediaLogger = {
  info() {},
  warn() {},
  error() {},
};
