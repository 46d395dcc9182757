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
  | 'source-timeout';

export class MediaError extends Error {
  readonly code: MediaErrorCode;
  constructor(code: MediaErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'MediaError';
    this.code = code;
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
