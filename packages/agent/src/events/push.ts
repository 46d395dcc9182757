/**
 * Notifications (docs/events-contract.md §6, docs/protocol.md "Notifications"): the device tells
 * its users' browsers of an event with a Web Push message that only those browsers can read.
 *
 * - A viewer sends `push/sub {sub}` in the sealed channel; {@link PushNotifier.subscribe} keeps it
 *   for that user key (at most {@link MAX_SUBS_PER_USER}, the oldest replaced) when the user's grant
 *   allows `timeline` (grants.ts: a grant naming neither `timeline` nor `snapshots` has it with
 *   `clips`), in `<dataDir>/push-subs.json` (private file).
 * - {@link PushNotifier.notify} (an event starts): at most one per camera per `cooldownMs`; for each
 *   user whose grant allows `timeline` on that camera *now* (its schedule) for an event made at
 *   `t` (its history floor), each of their subscriptions gets the
 *   payload `{v:1, type, cam, t, thumb?}` encrypted with RFC 8291 to that browser and padded to the
 *   one fixed size; the ciphertext goes to the server in a `push` frame over the rendezvous socket.
 * - {@link PushNotifier.clipReady}: the second notification of an event that was notified, with
 *   the clip's blob ID.
 * - A subscription the push service no longer knows (`E_PUSH_GONE`) is dropped.
 */
import { join } from 'node:path';
import { type Logger, readPrivateFile, silentLogger, writePrivateFile } from '@hearth/node';
import {
  type Acl,
  ConfigError,
  type CryptoEnv,
  type DeviceMessage,
  decodePushSubscription,
  encodePushPayload,
  encryptPush,
  HearthError,
  isErrorCode,
  PUSH_BODY_BYTES,
  PUSH_PLAINTEXT_BYTES,
  type PushPayload,
  type PushSubscriptionKeys,
  shortId,
  systemEnv,
} from '@hearth/protocol';
import type { RendezvousClient } from '../device/rendezvous-client.js';

/** The file of the subscriptions in the data directory. */
export const PUSH_SUBS_FILE = 'push-subs.json';
/** Subscriptions kept per user key (browsers and phones); a new one replaces the oldest. */
export const MAX_SUBS_PER_USER = 8;
/** Default least time between two notifications of one camera (ms). */
export const DEFAULT_PUSH_COOLDOWN_MS = 60_000;

/** One push as the transport sends it. */
export interface PushSend {
  endpoint: string;
  body: Uint8Array;
  ttl: number;
  urgency: 'very-low' | 'low' | 'normal' | 'high';
}

/** How pushes leave the device: `'ok'` or the registered error code the server answered. */
export interface PushTransport {
  push(p: PushSend): Promise<string>;
}

/** An event to notify: what a `start` of the detector or an event record gives. */
export interface PushEvent {
  type: 'motion' | 'sound';
  /** Camera name. */
  cam: string;
  /** Trigger time, ms since the epoch. */
  t: number;
  /** A small JPEG (bytes, or its standard base64), left out when it does not fit. */
  thumb?: Uint8Array | string;
}

/** What {@link PushNotifier.notify} did. */
export interface NotifyResult {
  /** False when the camera's cooldown held it back (or there was nobody to tell). */
  sent: boolean;
  /** Pushes the server accepted. */
  ok: number;
  /** Pushes that failed, by code. */
  failed: Record<string, number>;
}

export interface PushNotifierOptions {
  dataDir: string;
  /** The ACL now (undefined while unpaired: nobody is notified). */
  acl: () => Acl | undefined;
  transport: PushTransport;
  env?: CryptoEnv;
  log?: Logger;
  /** Least time between two notifications of one camera (ms). Default 60 s. */
  cooldownMs?: number;
  /** Push TTL (seconds): how long the push service keeps it for an offline browser. Default 900. */
  ttl?: number;
  /**
   * TEST ONLY: send the padded payload in clear instead of encrypted (the control showing that the
   * attack test, "the server sees only ciphertext", can fail). Not reachable from the CLI.
   */
  plaintextForTests?: boolean;
}

interface Stored {
  /** The user key (huk_). */
  k: string;
  sub: PushSubscriptionKeys;
  /** When it was stored (ms). */
  at: number;
}

/** The stored list, checked entry by entry (each subscription with the protocol's decoder). */
function decodeStored(v: unknown): Stored[] | undefined {
  if (typeof v !== 'object' || v === null || (v as { v?: unknown }).v !== 1) return undefined;
  const subs = (v as { subs?: unknown }).subs;
  if (!Array.isArray(subs) || subs.length > 4096) return undefined;
  const out: Stored[] = [];
  for (const e of subs as unknown[]) {
    const x = e as { k?: unknown; sub?: unknown; at?: unknown } | null;
    if (typeof x?.k !== 'string' || !/^huk_[A-Za-z0-9_-]{1,80}$/.test(x.k)) return undefined;
    if (typeof x.at !== 'number' || !Number.isSafeInteger(x.at) || x.at < 0) return undefined;
    try {
      out.push({ k: x.k, sub: decodePushSubscription(x.sub), at: x.at });
    } catch {
      return undefined;
    }
  }
  return out;
}

const b64std = (b: Uint8Array): string => Buffer.from(b).toString('base64');

/** Stores subscriptions and sends the notifications of events (see the module comment). */
export class PushNotifier {
  private subs: Stored[];
  private readonly path: string;
  private readonly env: CryptoEnv;
  private readonly log: Logger;
  private readonly last = new Map<string, number>();
  /** Events notified (cam/t), so that their clip gets the second notification. */
  private readonly notified = new Set<string>();

  constructor(private readonly o: PushNotifierOptions) {
    this.path = join(o.dataDir, PUSH_SUBS_FILE);
    this.env = o.env ?? systemEnv;
    this.log = o.log ?? silentLogger;
    this.subs = this.load();
  }

  private load(): Stored[] {
    const raw = readPrivateFile(this.path, 4 * 1024 * 1024);
    if (!raw) return [];
    let v: unknown;
    try {
      v = JSON.parse(raw.toString('utf8'));
    } catch {
      throw new ConfigError('E_CONFIG', `${this.path} is not JSON (delete it: viewers subscribe again)`);
    }
    const subs = decodeStored(v);
    if (!subs)
      throw new ConfigError(
        'E_CONFIG',
        `${this.path} is not a subscription list (delete it: viewers subscribe again)`,
      );
    return subs;
  }

  private save(): void {
    writePrivateFile(this.path, JSON.stringify({ v: 1, subs: this.subs }));
  }

  /** Subscriptions stored for `user` (a copy). */
  subscriptionsOf(user: string): PushSubscriptionKeys[] {
    return this.subs.filter((s) => s.k === user).map((s) => ({ ...s.sub }));
  }

  /**
   * A viewer's `push/sub`: store it when the user's grant allows `timeline` now (a grant naming
   * neither `timeline` nor `snapshots` has it with `clips`). Returns the reply.
   */
  subscribe(user: string, sub: unknown): DeviceMessage {
    const d = this.o.acl()?.authorize(user, 'timeline', this.env.now());
    if (!d?.allowed) return { t: 'push/error', code: d && !d.allowed ? d.error.code : 'E_NO_GRANT' };
    let s: PushSubscriptionKeys;
    try {
      s = decodePushSubscription(sub);
    } catch (e) {
      return { t: 'push/error', code: e instanceof HearthError ? e.code : 'E_SCHEMA' };
    }
    const rest = this.subs.filter((x) => !(x.k === user && x.sub.endpoint === s.endpoint));
    const mine = rest.filter((x) => x.k === user);
    const drop = new Set(mine.slice(0, Math.max(0, mine.length - (MAX_SUBS_PER_USER - 1))));
    this.subs = [...rest.filter((x) => !drop.has(x)), { k: user, sub: s, at: this.env.now() }];
    this.save();
    this.log.info({ viewer: shortId(user), subs: mine.length - drop.size + 1 }, 'push subscription stored');
    return { t: 'push/ok' };
  }

  /** Forget every subscription of `user` (e.g. the grant is gone). */
  forget(user: string): void {
    const n = this.subs.length;
    this.subs = this.subs.filter((s) => s.k !== user);
    if (this.subs.length !== n) this.save();
  }

  /** An event started: notify, unless the camera's cooldown holds it back. */
  async notify(e: PushEvent): Promise<NotifyResult> {
    const now = this.env.now();
    const cooldown = this.o.cooldownMs ?? DEFAULT_PUSH_COOLDOWN_MS;
    const prev = this.last.get(e.cam);
    if (prev !== undefined && now - prev < cooldown) return { sent: false, ok: 0, failed: {} };
    this.last.set(e.cam, now);
    const key = `${e.cam}/${e.t}`;
    this.notified.add(key);
    if (this.notified.size > 256) this.notified.delete(this.notified.values().next().value as string);
    return this.send({ v: 1, type: e.type, cam: e.cam, t: e.t }, e.thumb);
  }

  /** The event's clip is sealed: the second notification, only for an event that was notified. */
  async clipReady(e: PushEvent & { clip: string }): Promise<NotifyResult> {
    const key = `${e.cam}/${e.t}`;
    if (!this.notified.delete(key)) return { sent: false, ok: 0, failed: {} };
    return this.send({ v: 1, type: e.type, cam: e.cam, t: e.t, clip: e.clip }, e.thumb);
  }

  /** The payload's bytes, with the thumbnail when it fits, else without. */
  private plaintext(p: PushPayload, thumb: Uint8Array | string | undefined): Uint8Array {
    if (thumb !== undefined) {
      try {
        return encodePushPayload({ ...p, thumb: typeof thumb === 'string' ? thumb : b64std(thumb) });
      } catch {
        // too large (or not base64): the notification goes without its picture
      }
    }
    return encodePushPayload(p);
  }

  private async send(p: PushPayload, thumb: Uint8Array | string | undefined): Promise<NotifyResult> {
    const acl = this.o.acl();
    const now = this.env.now();
    // A notification is a timeline entry (with its thumbnail): `timeline` on that camera, now
    // (schedules), for an event made at `p.t` (history floors).
    const targets = this.subs.filter((s) => acl?.authorize(s.k, 'timeline', now, p.cam, { at: p.t }).allowed);
    const out: NotifyResult = { sent: targets.length > 0, ok: 0, failed: {} };
    if (!targets.length) return out;
    const pt = this.plaintext(p, thumb);
    const gone: Stored[] = [];
    await Promise.all(
      targets.map(async (s) => {
        let code: string;
        try {
          const body = this.o.plaintextForTests
            ? testPlaintextBody(pt)
            : await encryptPush(pt, { p256dh: s.sub.p256dh, auth: s.sub.auth }, this.env);
          code = await this.o.transport.push({
            endpoint: s.sub.endpoint,
            body,
            ttl: this.o.ttl ?? 900,
            urgency: p.clip ? 'normal' : 'high',
          });
        } catch (e) {
          code = e instanceof HearthError ? e.code : 'E_INTERNAL';
        }
        if (code === 'ok') out.ok++;
        else {
          out.failed[code] = (out.failed[code] ?? 0) + 1;
          if (code === 'E_PUSH_GONE') gone.push(s);
        }
      }),
    );
    if (gone.length) {
      this.subs = this.subs.filter((s) => !gone.includes(s));
      this.save();
      this.log.info({ count: gone.length }, 'dropped push subscriptions the push service no longer knows');
    }
    if (Object.keys(out.failed).length)
      this.log.warn({ camera: p.cam, ok: out.ok, failed: out.failed }, 'some notifications were not sent');
    return out;
  }
}

/** The test-only clear body: the padded plaintext where the ciphertext would be, same length. */
function testPlaintextBody(pt: Uint8Array): Uint8Array {
  const b = new Uint8Array(PUSH_BODY_BYTES);
  b.set(pt, PUSH_BODY_BYTES - PUSH_PLAINTEXT_BYTES - 16);
  return b;
}

/**
 * The device's pushes over its rendezvous connection: a `push` frame each, answered by the server
 * with `push/ok {ref}` or `error {code, ref}` (`E_OFFLINE`-like `E_PUSH_FAILED` when not connected
 * or when no answer comes within `timeoutMs`).
 */
export function rendezvousPushTransport(client: RendezvousClient, timeoutMs = 20_000): PushTransport {
  let n = 0;
  const waiting = new Map<string, (code: string) => void>();
  client.on('push/ok', (f: { ref: string }) => waiting.get(f.ref)?.('ok'));
  client.on('error-frame', (f: { code: string; ref?: string }) => {
    if (f.ref) waiting.get(f.ref)?.(isErrorCode(f.code) ? f.code : 'E_PUSH_FAILED');
  });
  return {
    push(p) {
      const ref = `push-${++n}`;
      return new Promise((resolve) => {
        const done = (code: string) => {
          clearTimeout(timer);
          waiting.delete(ref);
          resolve(code);
        };
        const timer = setTimeout(() => done('E_PUSH_FAILED'), timeoutMs);
        timer.unref?.();
        waiting.set(ref, done);
        const sent = client.send({
          t: 'push',
          ref,
          endpoint: p.endpoint,
          body: Buffer.from(p.body).toString('base64url'),
          ttl: p.ttl,
          urgency: p.urgency,
        });
        if (!sent) done('E_PUSH_FAILED');
      });
    },
  };
}
