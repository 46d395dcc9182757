/**
 * A minimal ONVIF client: just enough to ask a camera for a keyframe now (Media service
 * `SetSynchronizationPoint`), so that a view starting on a cold stream does not wait for the camera's
 * next scheduled keyframe (up to a whole GOP, often 10 s).
 *
 * SOAP 1.2 over HTTP with `fetch`, WS-Security UsernameToken with PasswordDigest
 * (`base64(SHA1(nonce + created + password))`, ONVIF Core spec §5.12), its Created corrected by the
 * camera's clock offset (unauthenticated `GetSystemDateAndTime`). Calls:
 * `GetCapabilities(Media)` on the device service for the Media service address, then `GetProfiles`
 * (and `GetStreamUri` per profile when there are several) to find the profile whose RTSP stream is the
 * one the agent reads, unless a profile token is configured, then `SetSynchronizationPoint`.
 *
 * The camera's answers are hostile input: bodies are capped ({@link OnvifClientOptions.maxResponseBytes}),
 * parsed by the strict {@link parseXml}, and checked element by element; anything unexpected is a
 * {@link MediaError} with an `onvif-*` code. Redirects are refused (they would resend the credentials
 * elsewhere), and a Media address on another host than the configured device is re-pointed at the
 * device's host. The password only ever leaves as a digest; it is never logged nor in an error.
 */
import { createHash, randomBytes } from 'node:crypto';
import { MediaError } from './errors.js';
import { child, childrenNamed, parseXml, type XmlElement, XmlError } from './onvif-xml.js';

export const NS = {
  soap: 'http://www.w3.org/2003/05/soap-envelope',
  wsse: 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd',
  wsu: 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd',
  tds: 'http://www.onvif.org/ver10/device/wsdl',
  trt: 'http://www.onvif.org/ver10/media/wsdl',
  tt: 'http://www.onvif.org/ver10/schema',
} as const;
const PASSWORD_DIGEST =
  'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest';
const BASE64_BINARY =
  'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary';

/** A camera's ONVIF settings, from the camera map (see cameras.ts). */
export interface OnvifConfig {
  /** The device service URL, `http(s)://host[:port]/onvif/device_service`. No userinfo. */
  readonly url: string;
  readonly user: string;
  /** Never logged. */
  readonly password: string;
  /** Media profile token; default: the profile whose stream URI matches `rtspUrl`, else the first. */
  readonly profile?: string;
}

export interface OnvifClientOptions {
  /** Per request. Default 4000 ms. */
  readonly timeoutMs?: number;
  /** Default 256 KiB. */
  readonly maxResponseBytes?: number;
  /** The camera's RTSP URL (with or without credentials) to pick the matching profile. */
  readonly rtspUrl?: string;
  /** For tests. */
  readonly fetch?: typeof fetch;
  readonly now?: () => Date;
  readonly nonce?: () => Buffer;
}

/** base64(SHA1(nonce ‖ created ‖ password)), the WS-Security UsernameToken PasswordDigest. */
export function passwordDigest(nonce: Buffer, created: string, password: string): string {
  return createHash('sha1')
    .update(Buffer.concat([nonce, Buffer.from(created, 'utf8'), Buffer.from(password, 'utf8')]))
    .digest('base64');
}

export function xmlEscape(s: string): string {
  return s.replace(
    /[<>&"']/g,
    (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c] ?? c,
  );
}

/** Created timestamp as ONVIF devices expect it: UTC, second precision, `Z`. */
function createdStamp(d: Date): string {
  return `${d.toISOString().slice(0, 19)}Z`;
}

/** A SOAP 1.2 envelope with a UsernameToken header (when credentials are given) around `body`. */
export function buildEnvelope(
  body: string,
  auth?: { user: string; password: string; nonce: Buffer; created: Date },
): string {
  let header = '';
  if (auth) {
    const created = createdStamp(auth.created);
    header =
      `<s:Header><wsse:Security s:mustUnderstand="1" xmlns:wsse="${NS.wsse}" xmlns:wsu="${NS.wsu}">` +
      `<wsse:UsernameToken><wsse:Username>${xmlEscape(auth.user)}</wsse:Username>` +
      `<wsse:Password Type="${PASSWORD_DIGEST}">${passwordDigest(auth.nonce, created, auth.password)}</wsse:Password>` +
      `<wsse:Nonce EncodingType="${BASE64_BINARY}">${auth.nonce.toString('base64')}</wsse:Nonce>` +
      `<wsu:Created>${created}</wsu:Created></wsse:UsernameToken></wsse:Security></s:Header>`;
  }
  return (
    `<?xml version="1.0" encoding="UTF-8"?>` +
    `<s:Envelope xmlns:s="${NS.soap}" xmlns:tds="${NS.tds}" xmlns:trt="${NS.trt}" xmlns:tt="${NS.tt}">` +
    `${header}<s:Body>${body}</s:Body></s:Envelope>`
  );
}

export const BODIES = {
  getSystemDateAndTime: () => '<tds:GetSystemDateAndTime/>',
  getCapabilities: () => '<tds:GetCapabilities><tds:Category>Media</tds:Category></tds:GetCapabilities>',
  getProfiles: () => '<trt:GetProfiles/>',
  getStreamUri: (token: string) =>
    '<trt:GetStreamUri><trt:StreamSetup><tt:Stream>RTP-Unicast</tt:Stream><tt:Transport>' +
    `<tt:Protocol>RTSP</tt:Protocol></tt:Transport></trt:StreamSetup><trt:ProfileToken>${xmlEscape(token)}</trt:ProfileToken></trt:GetStreamUri>`,
  setSynchronizationPoint: (token: string) =>
    `<trt:SetSynchronizationPoint><trt:ProfileToken>${xmlEscape(token)}</trt:ProfileToken></trt:SetSynchronizationPoint>`,
} as const;

const TOKEN_RE = /^[\x21-\x7e]{1,64}$/;

function bad(msg: string): MediaError {
  return new MediaError('onvif-response', `ONVIF: ${msg}`);
}

/**
 * Parses a SOAP response and returns the first element of its Body; a SOAP Fault becomes a
 * MediaError (`onvif-unauthorized` for ter:NotAuthorized, else `onvif-fault`). Throws
 * `onvif-response` for anything that is not a SOAP 1.2 envelope.
 */
export function parseSoapResponse(xml: string, maxChars = 256 * 1024): XmlElement {
  let doc: XmlElement;
  try {
    doc = parseXml(xml, { maxChars });
  } catch (e) {
    throw bad(`malformed XML (${e instanceof XmlError ? e.message.slice(0, 120) : 'error'})`);
  }
  if (doc.ns !== NS.soap || doc.local !== 'Envelope') throw bad('not a SOAP 1.2 envelope');
  const body = child(doc, NS.soap, 'Body');
  if (!body) throw bad('no SOAP Body');
  const first = body.children[0];
  if (!first) throw bad('empty SOAP Body');
  if (first.ns === NS.soap && first.local === 'Fault') {
    const code = child(first, NS.soap, 'Code');
    const sub = child(child(code, NS.soap, 'Subcode'), NS.soap, 'Value')?.text.trim() ?? '';
    const reason = child(child(first, NS.soap, 'Reason'), NS.soap, 'Text')?.text.trim() ?? '';
    const what = [child(code, NS.soap, 'Value')?.text.trim(), sub]
      .filter(Boolean)
      .join('/')
      .replace(/[^\x20-\x7e]/g, '?')
      .slice(0, 80);
    const why = reason.replace(/[^\x20-\x7e]/g, '?').slice(0, 120);
    const unauthorized = /(^|:)NotAuthorized$/.test(sub) || /(^|:)FailedAuthentication$/.test(sub);
    throw new MediaError(
      unauthorized ? 'onvif-unauthorized' : 'onvif-fault',
      `ONVIF: SOAP fault ${what || '(no code)'}${why ? `: ${why}` : ''}`,
    );
  }
  return first;
}

function expect(el: XmlElement, ns: string, local: string): XmlElement {
  if (el.ns !== ns || el.local !== local) throw bad(`expected ${local}, got ${el.local.slice(0, 40)}`);
  return el;
}

/** The camera's UTC clock from a GetSystemDateAndTimeResponse, in ms since the epoch. */
export function parseSystemDateAndTime(resp: XmlElement): number {
  expect(resp, NS.tds, 'GetSystemDateAndTimeResponse');
  const utc = child(child(resp, NS.tds, 'SystemDateAndTime'), NS.tt, 'UTCDateTime');
  const date = child(utc, NS.tt, 'Date');
  const time = child(utc, NS.tt, 'Time');
  const num = (el: XmlElement | undefined, local: string, min: number, max: number): number => {
    const t = child(el, NS.tt, local)?.text.trim() ?? '';
    const n = /^\d{1,4}$/.test(t) ? Number(t) : Number.NaN;
    if (!(n >= min && n <= max)) throw bad(`bad ${local} in the camera's clock`);
    return n;
  };
  return Date.UTC(
    num(date, 'Year', 1970, 9999),
    num(date, 'Month', 1, 12) - 1,
    num(date, 'Day', 1, 31),
    num(time, 'Hour', 0, 23),
    num(time, 'Minute', 0, 59),
    num(time, 'Second', 0, 61),
  );
}

/** The Media service XAddr from a GetCapabilitiesResponse. */
export function parseMediaXAddr(resp: XmlElement): string {
  expect(resp, NS.tds, 'GetCapabilitiesResponse');
  const media = child(child(resp, NS.tds, 'Capabilities'), NS.tt, 'Media');
  const x = child(media, NS.tt, 'XAddr')?.text.trim();
  if (!x) throw bad('no Media XAddr in the capabilities');
  return checkHttpUrl(x, 'Media XAddr');
}

/** Profile tokens from a GetProfilesResponse, in order (at most 32). */
export function parseProfileTokens(resp: XmlElement): string[] {
  expect(resp, NS.trt, 'GetProfilesResponse');
  const profiles = childrenNamed(resp, NS.trt, 'Profiles');
  if (profiles.length === 0) throw bad('the camera lists no media profile');
  const tokens = profiles.slice(0, 32).map((p) => p.attrs.token ?? '');
  for (const t of tokens) if (!TOKEN_RE.test(t)) throw bad('a media profile has no valid token');
  return tokens;
}

/** The stream URI from a GetStreamUriResponse. */
export function parseStreamUri(resp: XmlElement): string {
  expect(resp, NS.trt, 'GetStreamUriResponse');
  const uri = child(child(resp, NS.trt, 'MediaUri'), NS.tt, 'Uri')?.text.trim();
  if (!uri || uri.length > 2048) throw bad('no stream URI');
  return uri;
}

function checkHttpUrl(s: string, what: string): string {
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    throw bad(`${what} is not a URL`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw bad(`${what} is not http(s)`);
  if (s.length > 2048) throw bad(`${what} is too long`);
  return u.toString();
}

/** Path and query of a URL, for comparing stream URIs (hosts and credentials differ in practice). */
function pathOf(url: string): string | undefined {
  try {
    const u = new URL(url);
    return `${u.pathname.replace(/\/+$/, '')}${u.search}`;
  } catch {
    return undefined;
  }
}

export class OnvifClient {
  private readonly cfg: OnvifConfig;
  private readonly opts: OnvifClientOptions;
  private mediaUrl: string | undefined;
  private token: string | undefined;
  /** Camera clock minus ours (ms), for the UsernameToken's Created (cameras refuse a stale one). */
  private clockOffsetMs = 0;

  constructor(cfg: OnvifConfig, opts: OnvifClientOptions = {}) {
    const u = new URL(cfg.url);
    if ((u.protocol !== 'http:' && u.protocol !== 'https:') || u.username || u.password) {
      throw new MediaError('onvif-config', 'ONVIF: the device URL must be http(s) without credentials');
    }
    this.cfg = cfg;
    this.opts = opts;
    if (cfg.profile !== undefined) this.token = cfg.profile;
  }

  /** The resolved profile token, once known. */
  get profileToken(): string | undefined {
    return this.token;
  }

  /** Asks the camera for a keyframe now (resolving the Media address and profile first, once). */
  async setSynchronizationPoint(): Promise<void> {
    const media = await this.media();
    const token = await this.profile(media);
    const resp = await this.call(
      media,
      'SetSynchronizationPoint',
      BODIES.setSynchronizationPoint(token),
      NS.trt,
    );
    expect(resp, NS.trt, 'SetSynchronizationPointResponse');
  }

  private async media(): Promise<string> {
    if (this.mediaUrl) return this.mediaUrl;
    // Unauthenticated, as the ONVIF Core spec allows; a camera that does not answer it keeps offset 0.
    try {
      const t = parseSystemDateAndTime(
        await this.call(this.cfg.url, 'GetSystemDateAndTime', BODIES.getSystemDateAndTime(), NS.tds, false),
      );
      this.clockOffsetMs = t - this.now().getTime();
    } catch {
      this.clockOffsetMs = 0;
    }
    const resp = await this.call(this.cfg.url, 'GetCapabilities', BODIES.getCapabilities(), NS.tds);
    const x = new URL(parseMediaXAddr(resp));
    const dev = new URL(this.cfg.url);
    // Never send the credentials to another host than the configured one: cameras behind NAT or
    // with several interfaces report an address the agent may not reach anyway.
    if (x.hostname !== dev.hostname) {
      x.protocol = dev.protocol;
      x.hostname = dev.hostname;
      x.port = dev.port;
    }
    this.mediaUrl = x.toString();
    return this.mediaUrl;
  }

  private async profile(media: string): Promise<string> {
    if (this.token) return this.token;
    const tokens = parseProfileTokens(await this.call(media, 'GetProfiles', BODIES.getProfiles(), NS.trt));
    let pick = tokens[0] as string;
    const want = this.opts.rtspUrl ? pathOf(this.opts.rtspUrl) : undefined;
    if (tokens.length > 1 && want !== undefined) {
      for (const t of tokens.slice(0, 8)) {
        const uri = parseStreamUri(await this.call(media, 'GetStreamUri', BODIES.getStreamUri(t), NS.trt));
        if (pathOf(uri) === want) {
          pick = t;
          break;
        }
      }
    }
    this.token = pick;
    return pick;
  }

  private now(): Date {
    return this.opts.now?.() ?? new Date();
  }

  /** One SOAP call: POST, capped body, parsed; returns the Body's first element. */
  async call(url: string, action: string, body: string, actionNs: string, auth = true): Promise<XmlElement> {
    const f = this.opts.fetch ?? fetch;
    const max = this.opts.maxResponseBytes ?? 256 * 1024;
    const envelope = buildEnvelope(
      body,
      auth
        ? {
            user: this.cfg.user,
            password: this.cfg.password,
            nonce: this.opts.nonce?.() ?? randomBytes(16),
            created: new Date(this.now().getTime() + this.clockOffsetMs),
          }
        : undefined,
    );
    let res: Response;
    try {
      res = await f(url, {
        method: 'POST',
        headers: {
          'content-type': `application/soap+xml; charset=utf-8; action="${actionNs}/${action}"`,
        },
        body: envelope,
        redirect: 'error',
        signal: AbortSignal.timeout(this.opts.timeoutMs ?? 4000),
      });
    } catch (e) {
      const name = (e as { name?: unknown }).name;
      if (name === 'TimeoutError' || name === 'AbortError')
        throw new MediaError('onvif-timeout', `ONVIF: ${action} timed out`);
      const code = (e as { cause?: { code?: unknown } }).cause?.code;
      throw new MediaError(
        'onvif-network',
        `ONVIF: ${action} failed${code ? ` (${String(code).slice(0, 32)})` : ''}`,
      );
    }
    const text = await readCapped(res, max, action);
    const looksXml = /^\s*(<\?xml|<[A-Za-z_])/.test(text);
    if (!res.ok && !looksXml) {
      throw new MediaError(
        res.status === 401 ? 'onvif-unauthorized' : 'onvif-http',
        `ONVIF: ${action} answered HTTP ${res.status}`,
      );
    }
    const el = parseSoapResponse(text, max);
    if (!res.ok) throw bad(`${action} answered HTTP ${res.status} without a fault`);
    return el;
  }
}

async function readCapped(res: Response, max: number, action: string): Promise<string> {
  const len = Number(res.headers.get('content-length') ?? '0');
  if (len > max) {
    await res.body?.cancel().catch(() => undefined);
    throw new MediaError('onvif-too-large', `ONVIF: ${action} response larger than ${max} bytes`);
  }
  if (!res.body) return '';
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > max) {
        await reader.cancel().catch(() => undefined);
        throw new MediaError('onvif-too-large', `ONVIF: ${action} response larger than ${max} bytes`);
      }
      chunks.push(value);
    }
  } catch (e) {
    if (e instanceof MediaError) throw e;
    const name = (e as { name?: unknown }).name;
    throw new MediaError(
      name === 'TimeoutError' || name === 'AbortError' ? 'onvif-timeout' : 'onvif-network',
      `ONVIF: ${action} response not read`,
    );
  }
  const buf = Buffer.concat(chunks);
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(buf);
  } catch {
    throw bad(`${action} response is not UTF-8`);
  }
}
