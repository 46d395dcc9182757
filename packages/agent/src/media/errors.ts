/**
 * Typed errors of the media side. A {@link MediaError} is a {@link HearthError}: its `code` is a
 * registered wire code (protocol `errors.ts`), the one the viewer is told; `reason` is the finer,
 * stable media cause (tests, logs and the agent's own decisions match on it). Messages never hold
 * secrets and do not repeat the code.
 */
import { type Logger, silentLogger } from '@hearth/node';
import { type ErrorCode, HearthError } from '@hearth/protocol';

/** The media layer's causes, each with the registered code it is reported with. */
export const MEDIA_FAILURES = {
  'config-too-large': 'E_CONFIG',
  'config-yaml': 'E_CONFIG',
  'config-shape': 'E_CONFIG',
  'too-many-cameras': 'E_CONFIG',
  'camera-name': 'E_CONFIG',
  'camera-source': 'E_CONFIG',
  'camera-config': 'E_CONFIG',
  'camera-mode': 'E_CONFIG',
  /** A bad `motion` field in the camera map. */
  'camera-motion': 'E_CONFIG',
  /** A bad `retention` field in the camera map. */
  'camera-retention': 'E_CONFIG',
  'source-too-long': 'E_CONFIG',
  'unsupported-scheme': 'E_CONFIG',
  'bad-url': 'E_CONFIG',
  'bad-option': 'E_CONFIG',
  'secret-env-missing': 'E_CONFIG',
  'secret-file': 'E_CONFIG',
  /** The camera's stream holds a NAL unit above the limit: its source does not deliver usable video. */
  'nal-too-large': 'E_CAMERA_OFFLINE',
  /** ffmpeg cannot be started (not installed, not executable): needs the operator. */
  'ffmpeg-spawn': 'E_CAMERA_UNAVAILABLE',
  'ffmpeg-exited': 'E_CAMERA_OFFLINE',
  'probe-failed': 'E_CAMERA_OFFLINE',
  'source-timeout': 'E_CAMERA_OFFLINE',
  'unknown-camera': 'E_NO_CAMERA',
  'no-h264-in-offer': 'E_NO_H264',
  'bad-offer': 'E_BAD_SDP',
  'session-closed': 'E_SHUTDOWN',
  /** A bad `onvif` field in the camera map. */
  'camera-onvif': 'E_CONFIG',
  /**
   * ONVIF keyframe requests (src/media/onvif.ts). They never reach a viewer (a failed request is only
   * logged; the view goes on): the wire codes are what a caller would be told, had it to be.
   */
  'onvif-config': 'E_CONFIG',
  'onvif-response': 'E_INTERNAL',
  'onvif-fault': 'E_INTERNAL',
  'onvif-unauthorized': 'E_CONFIG',
  'onvif-http': 'E_INTERNAL',
  'onvif-timeout': 'E_TIMEOUT',
  'onvif-network': 'E_CAMERA_OFFLINE',
  'onvif-too-large': 'E_TOO_LARGE',
} as const satisfies Record<string, ErrorCode>;

/** A media cause (kebab-case, stable). */
export type MediaErrorCode = keyof typeof MEDIA_FAILURES;

export class MediaError extends HearthError {
  /** The media cause; `code` is its registered wire code. */
  readonly reason: MediaErrorCode;
  constructor(reason: MediaErrorCode, message: string, options?: { cause?: unknown }) {
    super(MEDIA_FAILURES[reason], message, options);
    this.name = 'MediaError';
    this.reason = reason;
  }
}

/** Sent to viewers (`session/refused`, `session/closed`) when a camera's source stays down. Transient. */
export const CAMERA_OFFLINE = 'E_CAMERA_OFFLINE' satisfies ErrorCode;
/**
 * Sent to viewers when the agent cannot run the camera's pipeline at all (ffmpeg cannot be started:
 * not installed, not executable). Needs the operator: the viewer stops retrying and says so.
 */
export const CAMERA_UNAVAILABLE = 'E_CAMERA_UNAVAILABLE' satisfies ErrorCode;

/** The wire code a viewer is told for a media cause. */
export function mediaWireCode(reason: MediaErrorCode): ErrorCode {
  return MEDIA_FAILURES[reason];
}

/** The structured logger of @hearth/node (pino-compatible subset), under the media layer's name. */
export type MediaLogger = Logger;
export { silentLogger };
