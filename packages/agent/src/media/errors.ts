/** Typed errors of the media side. `code` is stable (tests and callers match on it); messages never hold secrets. */
import { type Logger, silentLogger } from '@hearth/node';
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
  | 'source-timeout';

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

/** The structured logger of @hearth/node (pino-compatible subset), under the media layer's name. */
export type MediaLogger = Logger;
export { silentLogger };
