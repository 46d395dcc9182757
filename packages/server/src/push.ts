/**
 * Web Push out of the server (docs/protocol.md "Notifications"): a device's `push` frame becomes
 * one POST to the push service, with the server's VAPID authorization (RFC 8292).
 *
 * - The body is the device's RFC 8291 ciphertext, forwarded as is: the server cannot read it.
 * - VAPID: a P-256 key in `<dataDir>/vapid.key` (PKCS#8 PEM, private file), made at first start; its
 *   public key is served at `GET /v1/push/vapid` for the viewer's `pushManager.subscribe`. Each POST
 *   carries `Authorization: vapid t=<ES256 JWT {aud: endpoint origin, exp ≤ 12 h, sub}>, k=<key>`.
 * - The endpoint: an https URL whose host is not a loopback, private, link-local or otherwise local
 *   address, checked on the URL and again on every address DNS gives for it (the connection goes
 *   only to a checked address). `push.allowInsecureLoopback` (tests) admits loopback hosts, over
 *   http or over https with any certificate.
 * - A token bucket per device (`push.perMinute`, `push.burst`), kept across reconnects.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { BlockList, isIP } from 'node:net';
import { join } from 'node:path';
import { type Logger, readPrivateFile, writePrivateFile } from '@hearth/node';
import { ConfigError, MAX_PUSH_BODY_BYTES, type PUSH_URGENCIES, TokenBucket } from '@hearth/protocol';
import type { ServerConfig } from './config.js';

/** The file of the server's VAPID key in its data directory. */
export const VAPID_KEY_FILE = 'vapid.key';
/** Lifetime of a VAPID JWT (RFC 8292 allows at most 24 h). */
export const VAPID_JWT_TTL_S = 12 * 3600;

/** A `push` frame's request, as the hub hands it over. */
export interface PushRequest {
  endpoint: string;
  body: Uint8Array;
  ttl: number;
  urgency: (typeof PUSH_URGENCIES)[number];
}

/** What became of one push. */
export type PushOutcome = { ok: true } | { ok: false; code: PushErrorCode; status?: number };
/** The codes a push may fail with (all in RENDEZVOUS_ERROR_CODES). */
export type PushErrorCode = 'E_PUSH_ENDPOINT' | 'E_PUSH_GONE' | 'E_PUSH_FAILED' | 'E_RATE_LIMITED';

/** What the hub needs: send one device's push. */
export interface PushGateway {
  send(device: string, req: PushRequest): Promise<PushOutcome>;
}

const b64u = (b: Uint8Array): string => Buffer.from(b).toString('base64url');

/** Load the VAPID key from the data directory, or make and store one. */
export function loadVapidKey(dataDir: string): { privateKey: KeyObject; publicKey: Uint8Array } {
  const path = join(dataDir, VAPID_KEY_FILE);
  const pem = readPrivateFile(path, 16 * 1024);
  let privateKey: KeyObject;
  if (pem) {
    try {
      privateKey = createPrivateKey({ key: pem, format: 'pem' });
    } catch {
      throw new ConfigError('E_CONFIG', `${path} is not a PEM private key (delete it to make a new one)`);
    }
    if (privateKey.asymmetricKeyType !== 'ec' || privateKey.asymmetricKeyDetails?.namedCurve !== 'prime256v1')
      throw new ConfigError('E_CONFIG', `${path} is not a P-256 key (delete it to make a new one)`);
  } else {
    privateKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    writePrivateFile(path, privateKey.export({ type: 'pkcs8', format: 'pem' }) as string);
  }
  const jwk = createPublicKey(privateKey).export({ format: 'jwk' });
  const publicKey = Buffer.concat([
    Buffer.from([4]),
    Buffer.from(jwk.x as string, 'base64url'),
    Buffer.from(jwk.y as string, 'base64url'),
  ]);
  return { privateKey, publicKey: new Uint8Array(publicKey) };
}

/** An RFC 8292 VAPID JWT (ES256) for `aud`, and the `Authorization` value that carries it. */
export function vapidAuthorization(
  key: { privateKey: KeyObject; publicKey: Uint8Array },
  o: { aud: string; sub: string; now: number; ttlS?: number },
): string {
  const header = b64u(Buffer.from(JSON.stringify({ typ: 'JWT', alg: 'ES256' })));
  const exp = Math.floor(o.now / 1000) + Math.min(o.ttlS ?? VAPID_JWT_TTL_S, 24 * 3600);
  const claims = b64u(Buffer.from(JSON.stringify({ aud: o.aud, exp, sub: o.sub })));
  const input = `${header}.${claims}`;
  const sig = sign('sha256', Buffer.from(input), { key: key.privateKey, dsaEncoding: 'ieee-p1363' });
  return `vapid t=${input}.${b64u(sig)}, k=${b64u(key.publicKey)}`;
}

// ------------------------------------------------------------------ where the server sends

/** Addresses the server never connects to for a device (SSRF): local, private, special-purpose. */
const LOCAL = new BlockList();
for (const [net, bits] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const)
  LOCAL.addSubnet(net, bits, 'ipv4');
for (const [net, bits] of [
  ['::', 128],
  ['::1', 128],
  ['64:ff9b::', 96],
  ['100::', 64],
  ['2001:db8::', 32],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
] as const)
  LOCAL.addSubnet(net, bits, 'ipv6');
const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

function isLoopbackIp(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '');
  const f = isIP(h);
  return f !== 0 && LOOPBACK.check(h, f === 4 ? 'ipv4' : 'ipv6');
}

/** May the server connect to `address` (an IP text) for a push? */
export function pushAddressAllowed(address: string, allowLoopback: boolean): boolean {
  const family = isIP(address);
  if (family === 0) return false;
  const type = family === 4 ? 'ipv4' : 'ipv6';
  if (allowLoopback && LOOPBACK.check(address, type)) return true;
  if (type === 'ipv6' && address.toLowerCase().startsWith('::ffff:')) {
    const v4 = address.slice(7);
    if (isIP(v4) === 4) return pushAddressAllowed(v4, allowLoopback);
  }
  return !LOCAL.check(address, type);
}

/**
 * Check a push endpoint: the URL the server will POST to, or undefined when it must not. `https:`
 * only (with `allowInsecureLoopback`, also `http:` to a loopback host); no credentials; a literal
 * IP host must pass {@link pushAddressAllowed}.
 */
export function checkPushEndpoint(endpoint: string, allowInsecureLoopback: boolean): URL | undefined {
  let u: URL;
  try {
    u = new URL(endpoint);
  } catch {
    return undefined;
  }
  if (u.username || u.password || u.hash) return undefined;
  const host = u.hostname.replace(/^\[|\]$/g, '');
  if (host === '') return undefined;
  const isLoopbackHost = isIP(host) !== 0 && LOOPBACK.check(host, isIP(host) === 4 ? 'ipv4' : 'ipv6');
  if (u.protocol === 'http:') {
    if (!allowInsecureLoopback || !isLoopbackHost) return undefined;
  } else if (u.protocol !== 'https:') return undefined;
  if (isIP(host) !== 0 && !pushAddressAllowed(host, allowInsecureLoopback)) return undefined;
  if (
    isIP(host) === 0 &&
    /^(localhost|.*\.localhost|.*\.local|.*\.internal)$/i.test(host) &&
    !allowInsecureLoopback
  )
    return undefined;
  return u;
}

/** The options {@link PushSender} runs with (from `ServerConfig.push`). */
export type PushConfig = ServerConfig['push'];

/** Sends devices' pushes: endpoint checks, a budget per device, VAPID, one POST each. */
export class PushSender implements PushGateway {
  private readonly buckets = new Map<string, TokenBucket>();
  private readonly key: { privateKey: KeyObject; publicKey: Uint8Array };
  private readonly log: Logger;
  readonly subject: string;

  constructor(
    private readonly cfg: PushConfig,
    o: { dataDir: string; publicUrl?: string | undefined; log: Logger },
  ) {
    this.log = o.log;
    this.key = loadVapidKey(o.dataDir);
    this.subject =
      cfg.subject ?? (o.publicUrl?.startsWith('https:') ? o.publicUrl : 'mailto:admin@localhost');
  }

  /** The VAPID public key (b64u of the 65-byte point), as `GET /v1/push/vapid` serves it. */
  get publicKey(): string {
    return b64u(this.key.publicKey);
  }

  private take(device: string): boolean {
    const now = Date.now();
    let b = this.buckets.get(device);
    if (!b) {
      if (this.buckets.size >= 65_536) this.buckets.delete(this.buckets.keys().next().value as string);
      b = new TokenBucket(this.cfg.perMinute / 60, this.cfg.burst, now);
      this.buckets.set(device, b);
    }
    return b.take(now);
  }

  async send(device: string, req: PushRequest): Promise<PushOutcome> {
    const url = checkPushEndpoint(req.endpoint, this.cfg.allowInsecureLoopback);
    if (!url) return { ok: false, code: 'E_PUSH_ENDPOINT' };
    if (req.body.length > MAX_PUSH_BODY_BYTES) return { ok: false, code: 'E_PUSH_FAILED' };
    if (!this.take(device)) return { ok: false, code: 'E_RATE_LIMITED' };
    const authorization = vapidAuthorization(this.key, {
      aud: url.origin,
      sub: this.subject,
      now: Date.now(),
    });
    const allowLoopback = this.cfg.allowInsecureLoopback;
    const lookup = (
      hostname: string,
      options: object,
      cb: (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void,
    ) => {
      dnsLookup(hostname, { ...options, all: true }, (err, addrs) => {
        if (err) return cb(err, []);
        const ok = (addrs as LookupAddress[]).filter((a) => pushAddressAllowed(a.address, allowLoopback));
        if (!ok.length) {
          const e = new Error('push endpoint resolves to a local address') as NodeJS.ErrnoException;
          e.code = 'EHEARTHLOCAL';
          return cb(e, []);
        }
        if ((options as { all?: boolean }).all) return cb(null, ok);
        return cb(null, ok[0]!.address, ok[0]!.family);
      });
    };
    const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise<PushOutcome>((resolve) => {
      let done = false;
      const finish = (o: PushOutcome) => {
        if (done) return;
        done = true;
        resolve(o);
      };
      const r = request(
        url,
        {
          method: 'POST',
          // Only with the test switch, and then only for a loopback host (a test push service with
          // a self-signed certificate): everything else is verified as usual.
          ...(allowLoopback && isLoopbackIp(url.hostname) ? { rejectUnauthorized: false } : {}),
          lookup: lookup as never,
          timeout: this.cfg.timeoutMs,
          headers: {
            authorization,
            ttl: String(req.ttl),
            urgency: req.urgency,
            'content-encoding': 'aes128gcm',
            'content-type': 'application/octet-stream',
            'content-length': String(req.body.length),
          },
        },
        (res: IncomingMessage) => {
          const status = res.statusCode ?? 0;
          res.resume(); // drain, discard
          res.on('error', () => {});
          if (status >= 200 && status < 300) return finish({ ok: true });
          if (status === 404 || status === 410) return finish({ ok: false, code: 'E_PUSH_GONE', status });
          this.log.info({ device: device.slice(0, 12), status }, 'the push service refused a notification');
          return finish({ ok: false, code: 'E_PUSH_FAILED', status });
        },
      );
      r.on('timeout', () => {
        r.destroy(new Error('push service timeout'));
      });
      r.on('error', (e: NodeJS.ErrnoException) => {
        if (e.code === 'EHEARTHLOCAL') return finish({ ok: false, code: 'E_PUSH_ENDPOINT' });
        this.log.info({ device: device.slice(0, 12), err: e.code ?? e.message }, 'push POST failed');
        finish({ ok: false, code: 'E_PUSH_FAILED' });
      });
      r.end(Buffer.from(req.body));
    });
  }
}
