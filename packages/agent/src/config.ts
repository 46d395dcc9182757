/** Reading the agent's camera map (`cameras.yaml`) from disk. */
import { readFileSync } from 'node:fs';
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
