/** Reading the agent's camera map (`cameras.yaml`) from disk. */
import { readFileSync } from 'node:fs';
import { ConfigError, isTimeZone } from '@hearth/protocol';
import { parse as parseYaml } from 'yaml';
import { type CameraConfig, type ParseCamerasOptions, parseCamerasYaml } from './media/cameras.js';
import { MediaError } from './media/errors.js';

/**
 * Read and parse a go2rtc-style `cameras.yaml` (credentials substituted from `${ENV}` and
 * `${file:/path}`; never logged). Throws MediaError (`config-*`, `secret-*`, `camera-*`…); a file
 * that cannot be read is `config-yaml` with the errno code only.
 */
export function loadCamerasFile(path: string, opts: ParseCamerasOptions = {}): CameraConfig[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new MediaError(
      'config-yaml',
      `cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`,
    );
  }
  return parseCamerasYaml(text, opts);
}

/**
 * The device's time zone (grant schedules are evaluated in it): `tz` (an IANA name, e.g. from the
 * camera map's top-level `timeZone:`), else the system's, else `UTC`. Throws ConfigError
 * `E_CONFIG` for a name this runtime does not know.
 */
export function deviceTimeZone(tz?: string): string {
  const zone = tz ?? Intl.DateTimeFormat().resolvedOptions().timeZone ?? 'UTC';
  if (!isTimeZone(zone))
    throw new ConfigError('E_CONFIG', `timeZone ${JSON.stringify(zone)} is not an IANA time zone`);
  return zone;
}

/**
 * The top-level `timeZone:` of a camera map file (undefined when absent). Throws ConfigError
 * `E_CONFIG` when it is there but not a string, MediaError when the file is not YAML.
 */
export function loadTimeZone(path: string): string | undefined {
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(path, 'utf8'), { maxAliasCount: 0, uniqueKeys: true, strict: true });
  } catch (e) {
    throw new MediaError(
      'config-yaml',
      `cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? 'invalid YAML'}`,
    );
  }
  const tz = doc !== null && typeof doc === 'object' ? (doc as { timeZone?: unknown }).timeZone : undefined;
  if (tz === undefined || tz === null) return undefined;
  if (typeof tz !== 'string') throw new ConfigError('E_CONFIG', 'timeZone must be an IANA time zone name');
  return deviceTimeZone(tz);
}
