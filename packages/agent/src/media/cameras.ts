/**
 * go2rtc-style camera map:
 *
 * ```yaml
 * cameras:
 *   porch: rtsp://${CAM_USER}:${CAM_PASS}@192.168.1.20/stream1
 *   garden: rtsp://admin:${file:/run/secrets/garden}@garden.lan:554/h264
 *   demo: testsrc?size=1280x720&fps=15&gop=4
 *   loop: file:/srv/sample.mp4
 * ```
 *
 *
 * A camera may also be a mapping, to set how its stream is kept:
 *
 * ```yaml
 * cameras:
 *   nursery: rtsp://cam.lan/stream1          # warm (the default)
 *   porch:
 *     source: rtsp://porch.lan/stream1
 *     mode: on-demand                        # start on the first viewer, stop after the last
 * ```
 *
 * `warm` (default for every source kind) keeps the camera's ffmpeg running from the agent's start, so
 * the GOP cache always holds the latest keyframe and every view starts at once; `on-demand` starts it
 * on the first viewer and stops it after the last (battery cameras, metered links).
 *
 * Only three source kinds exist (`testsrc`, `file:`, `rtsp(s)://`): there is deliberately no `exec:`
 * or raw-ffmpeg source, which is how config files became remote code execution elsewhere. Credentials
 * are kept out of every error message, log line and JSON serialisation (see {@link redact}).
 */
import { readFileSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { parse as parseYaml, YAMLError } from 'yaml';
import { parseMotion, parseRetention, type RetentionConfig } from '../events/config.js';
import type { MotionConfig } from '../events/motion.js';
import { MediaError } from './errors.js';
import type { OnvifConfig } from './onvif.js';

export interface TestSource {
  readonly kind: 'testsrc';
  readonly width: number;
  readonly height: number;
  readonly fps: number;
  /** Keyframe interval in seconds. */
  readonly gopSeconds: number;
  /** Safe to log. */
  readonly display: string;
}

export interface FileSource {
  readonly kind: 'file';
  readonly path: string;
  readonly display: string;
}

export interface RtspSource {
  readonly kind: 'rtsp';
  /** Redacted URL, safe to log. */
  readonly display: string;
  /** The real URL with credentials. Only for building the ffmpeg argv. */
  secretUrl(): string;
  /** Credential strings (decoded and encoded) to scrub from ffmpeg output. */
  secrets(): readonly string[];
  /** The URL's userinfo, decoded (the ONVIF client's default credentials). Never log it. */
  credentials(): { readonly user: string; readonly password: string } | undefined;
}

export type CameraSourceSpec = TestSource | FileSource | RtspSource;

/**
 * How a camera's stream is kept. `warm`: always running (a keyframe is always cached, views start at
 * once). `on-demand`: started by the first viewer, stopped `stopDelayMs` after the last.
 */
export type CameraMode = 'warm' | 'on-demand';
export const CAMERA_MODES: readonly CameraMode[] = ['warm', 'on-demand'];

export interface CameraConfig {
  readonly name: string;
  readonly source: CameraSourceSpec;
  /** Default {@link defaultCameraMode} of the source (warm for every kind). */
  readonly mode: CameraMode;
  /** ONVIF device service of an rtsp camera: asked for a keyframe when a view starts on a cold stream. */
  readonly onvif?: OnvifConfig;
  /** Motion detection (`motion:`), on a small grayscale copy from the same ffmpeg. */
  readonly motion?: MotionConfig;
  /** How long and how much of its recordings are kept (`retention:`); absent: the defaults. */
  readonly retention?: RetentionConfig;
}

/**
 * The mode of a camera whose config does not say. Warm for every kind: rtsp cameras are
 * mains-powered on a LAN (`-c copy`, little CPU), file: loops are local, and testsrc is the demo,
 * which should be fast. Battery or metered cameras say `mode: on-demand`.
 */
export function defaultCameraMode(_source: CameraSourceSpec): CameraMode {
  return 'warm';
}

const ENTRY_KEYS = new Set(['source', 'mode', 'onvif', 'motion', 'retention']);
const ONVIF_KEYS = new Set(['url', 'user', 'password', 'profile']);

export interface ParseCamerasOptions {
  /** Environment for `${VAR}` substitution. Default `process.env`. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Reader for `${file:/path}` secrets. Default `fs.readFileSync(path, 'utf8')`. */
  readonly readSecretFile?: (path: string) => string;
  /** Max YAML size in bytes. Default 64 KiB. */
  readonly maxBytes?: number;
  /** Max number of cameras. Default 64. */
  readonly maxCameras?: number;
  /** Max length of one source string. Default 2048. */
  readonly maxSourceLength?: number;
}

export const CAMERA_NAME_RE = /^[a-z0-9_-]{1,32}$/;
const MAX_SECRET_FILE_BYTES = 4096;

export const TESTSRC_DEFAULTS = { width: 640, height: 360, fps: 15, gopSeconds: 2 } as const;

/**
 * Redacts credentials from a URL or from any text holding URLs: userinfo becomes `***@`, and query
 * parameters whose name looks secret (pass, pwd, token, secret, auth, key, user, sig) become `***`.
 */
export function redact(text: string): string {
  let out = text.replace(/([a-z][a-z0-9+.-]*:\/\/)(\S*)/gi, (_m, scheme: string, rest: string) => {
    // Everything up to the last '@' of the token is treated as userinfo (passwords may hold '@' or '/').
    const at = rest.lastIndexOf('@');
    return at >= 0 ? `${scheme}***@${rest.slice(at + 1)}` : `${scheme}${rest}`;
  });
  out = out.replace(
    /([?&;][^=&\s?;]*(?:pass|pwd|token|secret|auth|key|user|sig)[^=&\s?;]*=)[^&\s;]*/gi,
    '$1***',
  );
  return out;
}

/** {@link redact}, plus removal of every literal secret (and its URL-encoded form) of length ≥ 3. */
export function redactText(text: string, secrets: readonly string[] = []): string {
  let out = redact(text);
  const all = new Set<string>();
  for (const s of secrets) {
    if (s.length < 3) continue;
    all.add(s);
    all.add(encodeURIComponent(s));
  }
  for (const s of [...all].sort((a, b) => b.length - a.length)) out = out.split(s).join('***');
  return out;
}

function err(code: ConstructorParameters<typeof MediaError>[0], msg: string): MediaError {
  return new MediaError(code, msg);
}

/** Parses a YAML document with a top-level `cameras:` map. Throws {@link MediaError} with a stable code. */
export function parseCamerasYaml(text: string, opts: ParseCamerasOptions = {}): CameraConfig[] {
  const maxBytes = opts.maxBytes ?? 64 * 1024;
  const size = Buffer.byteLength(text, 'utf8');
  if (size > maxBytes)
    throw err('config-too-large', `camera config is ${size} bytes; the limit is ${maxBytes}`);
  let doc: unknown;
  try {
    // No aliases at all (no billion-laughs), duplicate keys are an error.
    doc = parseYaml(text, { maxAliasCount: 0, uniqueKeys: true, prettyErrors: false, strict: true });
  } catch (e) {
    // The yaml library's messages can quote the offending line, which may hold a password: only
    // report its error code and position.
    if (e instanceof YAMLError) {
      const lp = e.linePos?.[0];
      const where = lp ? ` at line ${lp.line}, column ${lp.col}` : '';
      throw err('config-yaml', `invalid YAML${where} (${e.code})`);
    }
    throw err('config-yaml', 'invalid YAML');
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    throw err('config-shape', 'camera config must be a mapping with a "cameras" key');
  }
  const cams = (doc as Record<string, unknown>).cameras;
  if (cams === undefined || cams === null) return [];
  if (typeof cams !== 'object' || Array.isArray(cams)) {
    throw err('config-shape', '"cameras" must be a mapping of camera name to source');
  }
  const entries = Object.entries(cams as Record<string, unknown>);
  const maxCameras = opts.maxCameras ?? 64;
  if (entries.length > maxCameras) {
    throw err('too-many-cameras', `${entries.length} cameras configured; the limit is ${maxCameras}`);
  }
  return entries.map(([name, raw]) => parseCameraEntry(name, raw, opts));
}

/**
 * Parses one entry of the `cameras:` map: a source string, or a mapping `{source, mode?}` (no other
 * keys). Throws {@link MediaError}: `camera-config` for a bad mapping, `camera-mode` for a bad mode.
 */
export function parseCameraEntry(name: string, raw: unknown, opts: ParseCamerasOptions = {}): CameraConfig {
  checkName(name);
  if (raw === null || typeof raw !== 'object') {
    const source = parseCameraSource(name, raw, opts);
    return { name, source, mode: defaultCameraMode(source) };
  }
  if (Array.isArray(raw)) {
    throw err(
      'camera-config',
      `camera "${name}": must be a source string or a mapping with "source" and "mode"`,
    );
  }
  const obj = raw as Record<string, unknown>;
  for (const k of Object.keys(obj)) {
    if (!ENTRY_KEYS.has(k)) {
      const shown = JSON.stringify(redact(k.slice(0, 32)));
      throw err(
        'camera-config',
        `camera "${name}": unknown key ${shown} (allowed: source, mode, onvif, motion, retention)`,
      );
    }
  }
  if (!('source' in obj)) throw err('camera-config', `camera "${name}": "source" is missing`);
  if (typeof obj.source !== 'string')
    throw err('camera-config', `camera "${name}": "source" must be a string`);
  let mode: CameraMode | undefined;
  if ('mode' in obj) {
    const m = obj.mode;
    if (typeof m !== 'string' || !(CAMERA_MODES as readonly string[]).includes(m)) {
      const shown =
        typeof m === 'string'
          ? JSON.stringify(redact(m.slice(0, 32)))
          : `a ${m === null ? 'null' : typeof m}`;
      throw err('camera-mode', `camera "${name}": mode must be "warm" or "on-demand", not ${shown}`);
    }
    mode = m as CameraMode;
  }
  const source = parseCameraSource(name, obj.source, opts);
  const onvif = 'onvif' in obj ? parseOnvif(name, obj.onvif, source, opts) : undefined;
  const motion = parseMotion(name, obj.motion);
  const retention = parseRetention(name, obj.retention);
  return {
    name,
    source,
    mode: mode ?? defaultCameraMode(source),
    ...(onvif ? { onvif } : {}),
    ...(motion ? { motion } : {}),
    ...(retention ? { retention } : {}),
  };
}

/**
 * `onvif: http://cam/onvif/device_service`, or `onvif: {url, user?, password?, profile?}`. User and
 * password default to the RTSP URL's userinfo; both accept `${ENV}` and `${file:/path}`. Only for
 * rtsp sources. Throws `camera-onvif`.
 */
function parseOnvif(
  name: string,
  raw: unknown,
  source: CameraSourceSpec,
  opts: ParseCamerasOptions,
): OnvifConfig {
  const fail = (msg: string): MediaError => err('camera-onvif', `camera "${name}": onvif: ${msg}`);
  if (source.kind !== 'rtsp') throw fail('only rtsp:// cameras can have an ONVIF service');
  let obj: Record<string, unknown>;
  if (typeof raw === 'string') obj = { url: raw };
  else if (raw !== null && typeof raw === 'object' && !Array.isArray(raw))
    obj = raw as Record<string, unknown>;
  else throw fail('must be the device service URL or a mapping with "url"');
  for (const k of Object.keys(obj)) {
    if (!ONVIF_KEYS.has(k)) {
      const shown = JSON.stringify(redact(k.slice(0, 32)));
      throw fail(`unknown key ${shown} (allowed: url, user, password, profile)`);
    }
  }
  for (const k of ONVIF_KEYS) {
    if (k in obj && typeof obj[k] !== 'string') throw fail(`"${k}" must be a string`);
  }
  const url = obj.url as string | undefined;
  if (url === undefined) throw fail('"url" is missing');
  if (url.length > 2048) throw fail('url is too long');
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw fail(`malformed URL ${redact(url.slice(0, 200))}`);
  }
  // biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point
  if ((u.protocol !== 'http:' && u.protocol !== 'https:') || !u.hostname || /[\s\u0000-\u001f]/.test(url)) {
    throw fail(`the device URL must be http:// or https:// with a host: ${redact(url.slice(0, 200))}`);
  }
  if (u.username || u.password || url.includes('@')) {
    throw fail('put the credentials in "user" and "password" (or the RTSP URL), not in the ONVIF URL');
  }
  const sub = (v: string): string =>
    tokenize(v)
      .map((t) => ('lit' in t ? t.lit : resolveRef(name, t.ref, opts)))
      .join('');
  const fromRtsp = source.credentials();
  const user = obj.user !== undefined ? sub(obj.user as string) : fromRtsp?.user;
  const password = obj.password !== undefined ? sub(obj.password as string) : fromRtsp?.password;
  if (!user || password === undefined || password === '') {
    throw fail('needs a user and password (in the RTSP URL, or "user" and "password")');
  }
  if (user.length > 256 || password.length > 256) throw fail('user or password longer than 256');
  let profile: string | undefined;
  if (obj.profile !== undefined) {
    profile = obj.profile as string;
    if (!/^[\x21-\x7e]{1,64}$/.test(profile))
      throw fail('profile must be a token of 1..64 printable characters');
  }
  const display = u.toString();
  const cfg: OnvifConfig = { url: display, user, password, ...(profile ? { profile } : {}) };
  // The password stays out of JSON serialisations (logs, stats).
  Object.defineProperty(cfg, 'toJSON', {
    value: () => ({ url: display, ...(profile ? { profile } : {}) }),
    enumerable: false,
  });
  return Object.freeze(cfg);
}

function checkName(name: string): string {
  if (!CAMERA_NAME_RE.test(name)) {
    const shown = JSON.stringify(redact(name.slice(0, 40)));
    throw err('camera-name', `camera name ${shown} must match [a-z0-9_-]{1,32}`);
  }
  return name;
}

/** Parses one source string for camera `name`. */
export function parseCameraSource(
  name: string,
  raw: unknown,
  opts: ParseCamerasOptions = {},
): CameraSourceSpec {
  checkName(name);
  if (typeof raw !== 'string') {
    throw err('camera-source', `camera "${name}": source must be a string`);
  }
  const maxLen = opts.maxSourceLength ?? 2048;
  if (raw.length > maxLen) throw err('source-too-long', `camera "${name}": source longer than ${maxLen}`);
  // biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point
  if (/[\u0000-\u001f\u007f\s]/.test(raw)) {
    throw err('camera-source', `camera "${name}": source must not contain spaces or control characters`);
  }
  if (raw === 'testsrc' || raw.startsWith('testsrc?')) return parseTestsrc(name, raw);
  if (raw.startsWith('file:')) return parseFile(name, raw);
  if (/^rtsps?:\/\//i.test(raw)) return parseRtsp(name, raw, opts);
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(raw)?.[1];
  throw err(
    'unsupported-scheme',
    `camera "${name}": unsupported source${scheme ? ` scheme "${scheme.slice(0, 16)}"` : ''} (use rtsp://, file: or testsrc)`,
  );
}

function parseTestsrc(name: string, raw: string): TestSource {
  const q = raw.indexOf('?');
  const params = new URLSearchParams(q >= 0 ? raw.slice(q + 1) : '');
  let { width, height, fps, gopSeconds } = TESTSRC_DEFAULTS as {
    width: number;
    height: number;
    fps: number;
    gopSeconds: number;
  };
  for (const [k, v] of params) {
    if (k === 'size') {
      const m = /^(\d{2,4})x(\d{2,4})$/.exec(v);
      const w = Number(m?.[1]);
      const h = Number(m?.[2]);
      if (!m || w < 16 || h < 16 || w > 3840 || h > 2160 || w % 2 || h % 2) {
        throw err('bad-option', `camera "${name}": size must be WxH, even, 16..3840 x 16..2160`);
      }
      width = w;
      height = h;
    } else if (k === 'fps') {
      const n = Number(v);
      if (!/^\d+$/.test(v) || n < 1 || n > 60) throw err('bad-option', `camera "${name}": fps must be 1..60`);
      fps = n;
    } else if (k === 'gop') {
      const n = Number(v);
      if (!/^\d+(\.\d+)?$/.test(v) || n < 0.1 || n > 60) {
        throw err('bad-option', `camera "${name}": gop must be 0.1..60 seconds`);
      }
      gopSeconds = n;
    } else {
      throw err('bad-option', `camera "${name}": unknown testsrc option "${k.slice(0, 32)}"`);
    }
  }
  return { kind: 'testsrc', width, height, fps, gopSeconds, display: raw };
}

function parseFile(name: string, raw: string): FileSource {
  const path = raw.slice('file:'.length);
  if (!isAbsolute(path) || path.includes('${')) {
    throw err('camera-source', `camera "${name}": file source needs an absolute path (file:/path/to.mp4)`);
  }
  return { kind: 'file', path, display: raw };
}

type Token = { lit: string } | { ref: string };

function tokenize(s: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < s.length) {
    const j = s.indexOf('${', i);
    if (j < 0) {
      out.push({ lit: s.slice(i) });
      break;
    }
    if (j > i) out.push({ lit: s.slice(i, j) });
    const k = s.indexOf('}', j);
    if (k < 0) throw err('bad-url', 'unterminated ${ in source');
    out.push({ ref: s.slice(j + 2, k) });
    i = k + 1;
  }
  return out;
}

function resolveRef(name: string, ref: string, opts: ParseCamerasOptions): string {
  if (ref.startsWith('file:')) {
    const path = ref.slice(5);
    if (!isAbsolute(path)) throw err('secret-file', `camera "${name}": \${file:...} needs an absolute path`);
    let v: string;
    try {
      v = (opts.readSecretFile ?? ((p: string) => readFileSync(p, 'utf8')))(path);
    } catch (e) {
      const code = (e as { code?: unknown }).code;
      throw err(
        'secret-file',
        `camera "${name}": cannot read secret file ${path}${code ? ` (${String(code)})` : ''}`,
      );
    }
    if (Buffer.byteLength(v) > MAX_SECRET_FILE_BYTES) {
      throw err(
        'secret-file',
        `camera "${name}": secret file ${path} is larger than ${MAX_SECRET_FILE_BYTES} bytes`,
      );
    }
    return v.replace(/\r?\n$/, '');
  }
  if (!/^[A-Za-z_][A-Za-z0-9_]{0,127}$/.test(ref)) {
    throw err('bad-url', `camera "${name}": bad substitution name (use \${ENV_VAR} or \${file:/path})`);
  }
  const env = opts.env ?? process.env;
  const v = env[ref];
  if (v === undefined)
    throw err('secret-env-missing', `camera "${name}": environment variable ${ref} is not set`);
  return v;
}

function parseRtsp(name: string, raw: string, opts: ParseCamerasOptions): RtspSource {
  const display = redact(raw);
  const m = /^(rtsps?):\/\/((?:\$\{[^}]*\}|[^/$])*@)?(.*)$/is.exec(raw);
  if (!m) throw err('bad-url', `camera "${name}": malformed URL ${display}`);
  const scheme = (m[1] ?? 'rtsp').toLowerCase();
  const userinfoTmpl = m[2]?.slice(0, -1);
  const restTmpl = m[3] ?? '';
  const secrets: string[] = [];
  const subst = (tmpl: string, encode: boolean): string =>
    tokenize(tmpl)
      .map((t) => {
        if ('lit' in t) return t.lit;
        const v = resolveRef(name, t.ref, opts);
        if (encode) secrets.push(v);
        return encode ? encodeURIComponent(v) : v;
      })
      .join('');
  let userinfo = '';
  if (userinfoTmpl !== undefined) {
    // Split user:pass on the first ':' outside ${...}.
    let depth = 0;
    let colon = -1;
    for (let i = 0; i < userinfoTmpl.length; i++) {
      if (userinfoTmpl.startsWith('${', i)) depth++;
      else if (userinfoTmpl[i] === '}' && depth > 0) depth--;
      else if (userinfoTmpl[i] === ':' && depth === 0) {
        colon = i;
        break;
      }
    }
    const userT = colon >= 0 ? userinfoTmpl.slice(0, colon) : userinfoTmpl;
    const passT = colon >= 0 ? userinfoTmpl.slice(colon + 1) : undefined;
    const user = subst(userT, true);
    const pass = passT === undefined ? undefined : subst(passT, true);
    // Literal credentials in the file are secrets too.
    for (const t of [userT, passT]) {
      if (t === undefined) continue;
      for (const tok of tokenize(t)) if ('lit' in tok && tok.lit) secrets.push(safeDecode(tok.lit), tok.lit);
    }
    userinfo = `${user}${pass === undefined ? '' : `:${pass}`}@`;
  }
  const rest = subst(restTmpl, false);
  const full = `${scheme}://${userinfo}${rest}`;
  let url: URL;
  try {
    url = new URL(full);
  } catch {
    throw err('bad-url', `camera "${name}": malformed URL ${display}`);
  }
  // biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point
  if (!url.hostname || /[\s\u0000-\u001f]/.test(full)) {
    throw err('bad-url', `camera "${name}": URL needs a host and no spaces: ${display}`);
  }
  if (url.username === '' && url.password === '' && /@/.test(rest.split('/')[0] ?? '')) {
    throw err('bad-url', `camera "${name}": malformed userinfo in ${display}`);
  }
  const frozenSecrets = Object.freeze([...new Set(secrets.filter((s) => s.length > 0))]);
  const shown = redact(full);
  return Object.freeze({
    kind: 'rtsp' as const,
    display: shown,
    secretUrl: () => full,
    secrets: () => frozenSecrets,
    credentials: () =>
      url.username === ''
        ? undefined
        : { user: safeDecode(url.username), password: safeDecode(url.password) },
    toJSON: () => ({ kind: 'rtsp', display: shown }),
  });
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
