/**
 * The logger every Hearth package takes: the subset of pino that the code calls, structured
 * fields first and the message second. A pino logger is one; so is {@link silentLogger}.
 * Secrets and message payloads never go in the fields.
 */
export interface Logger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  debug?(obj: object, msg?: string): void;
}

/** A logger that drops everything. */
export const silentLogger: Logger = {
  info() {},
  warn() {},
  error() {},
  debug() {},
};
