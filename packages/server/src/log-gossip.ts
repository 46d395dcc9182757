/**
 * Witness gossip for the devices' access logs (docs/protocol.md "The access log"): each owner's
 * viewer that verified a device's checkpoint publishes it with its cosignature, and reads the
 * others', so that a device (or whoever holds its key) showing two owners two histories is caught
 * (`E_LOG_FORK` in their LogMonitor).
 *
 * | Method | Path                           | Who                                          | Answer |
 * |--------|--------------------------------|----------------------------------------------|--------|
 * | PUT    | `/v1/log/<deviceId>/cosigned`  | a user key, body `{note, key, dk}`           | 204    |
 * | GET    | `/v1/log/<deviceId>/cosigned`  | a user key that has a note stored there      | `{list: [{note}]}` |
 *
 * Both carry `authorization: Hearth <token>` (the blob store's request token, protocol blobs.ts:
 * method, path, time, nonce, body hash, signed by the user key). A PUT is kept only when `dk` is
 * the key of `<deviceId>`, the note is a checkpoint of that device's log signed by `dk`, and it
 * carries a valid `cosignature/v1` of `key`, the token's signer: so only someone who was shown a
 * device-signed checkpoint can publish, and nobody can publish in another's name. The latest note
 * of each key is kept (a smaller tree than the stored one is refused: `E_BAD_STATE`), at most
 * MAX_COSIGNED_PER_DEVICE keys per device (the least recently updated goes), in memory.
 *
 * What the server can do with gossip: withhold or drop notes (then a split view is not caught
 * through it), or show two owners different subsets. What it cannot: forge or alter a note (each
 * viewer verifies the device signature and the cosignatures itself), or make a fork look like one
 * history. GET is only for keys that published, so a stranger does not learn a device's owners.
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  AccessError,
  cosignerKey,
  decodeCosignedBody,
  decodeId,
  deviceIdMatches,
  HearthError,
  InternalError,
  isId,
  LimitError,
  logOrigin,
  MAX_COSIGNED_BODY_BYTES,
  MAX_COSIGNED_NOTE_BYTES,
  MAX_COSIGNED_PER_DEVICE,
  MemoryReplayCache,
  openCosigned,
  ProtocolError,
  TokenBuckets,
  VerificationError,
  type VerifiedBlobRequest,
  verifyBlobRequestToken,
} from '@hearth/protocol';
import type { Logger } from 'pino';
import { readSmallBody, sendError, sendJson } from './http-reply.js';
import { httpStatus } from './http-status.js';

/** The path prefix of the gossip routes. */
export const LOG_GOSSIP_PREFIX = '/v1/log/';
/** Most devices with notes kept (the least recently updated device goes first). */
export const MAX_GOSSIP_DEVICES = 10_000;
/** Requests per address: rate per second and burst. */
const ADDR_RATE = 20;
const ADDR_BURST = 100;
/** Most rate buckets kept. */
const MAX_BUCKETS = 10_000;

/** Test-only switches that each turn one defence off (the controls of the gossip tests). */
export interface LogGossipTestHooks {
  now?: () => number;
  /** Requests per address (default 20 a second, burst 100). */
  perAddress?: { perSecond: number; burst: number };
  unguarded?: {
    /** The note's device signature and cosignature are not checked (any text is kept). */
    notes?: boolean;
    /** GET answers anyone, not only keys that published. */
    read?: boolean;
  };
}

interface Stored {
  note: string;
  size: number;
}

/** The gossip routes, in memory. */
export class LogGossipHttp {
  /** Per device, per cosigner key (huk text): the latest note. Map order: least recently updated first. */
  private readonly devices = new Map<string, Map<string, Stored>>();
  private readonly addrs: TokenBuckets;
  private readonly replay = new MemoryReplayCache(100_000, 10 * 60_000);
  private readonly now: () => number;
  private readonly off: NonNullable<LogGossipTestHooks['unguarded']>;

  constructor(
    private readonly log: Logger,
    test: LogGossipTestHooks = {},
  ) {
    this.now = test.now ?? Date.now;
    this.off = test.unguarded ?? {};
    const rate = test.perAddress ?? { perSecond: ADDR_RATE, burst: ADDR_BURST };
    this.addrs = new TokenBuckets(rate.perSecond, rate.burst, MAX_BUCKETS);
  }

  /** True when `url` is a gossip route. */
  static handles(url: string | undefined): boolean {
    return (url ?? '').startsWith(LOG_GOSSIP_PREFIX);
  }

  /** Forget every note kept for `deviceId` (its factory reset or household erase, S8). */
  forget(deviceId: string): void {
    if (this.devices.delete(deviceId))
      this.log.info({ dev: deviceId.slice(0, 13) }, 'log gossip: erased a device');
  }

  /** How many notes are kept for `deviceId` (tests). */
  count(deviceId: string): number {
    return this.devices.get(deviceId)?.size ?? 0;
  }

  /** Answer one request (never throws). */
  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      await this.serve(req, res);
    } catch (e) {
      const err = e instanceof HearthError ? e : new InternalError('E_INTERNAL', 'internal error');
      if (!(e instanceof HearthError)) this.log.error({ err: (e as Error).message }, 'log gossip failed');
      sendError(res, err);
    }
  }

  private async serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!this.addrs.take(req.socket.remoteAddress ?? '?', this.now()))
      throw new LimitError('E_RATE_LIMITED', 'too many log gossip requests from this address');
    const url = req.url ?? '/';
    const method = req.method ?? 'GET';
    const m = /^\/v1\/log\/([^/?#]{1,80})\/cosigned$/.exec(url);
    if (!m) throw new ProtocolError('E_NOT_FOUND', 'no such log route');
    const dev = m[1]!;
    if (!isId('deviceId', dev)) throw new ProtocolError('E_BAD_ID', 'not a device ID');
    if (method !== 'PUT' && method !== 'GET') {
      res.writeHead(httpStatus('E_BAD_METHOD'), { allow: 'GET, PUT', connection: 'close' }).end();
      return;
    }
    const auth = req.headers.authorization;
    if (typeof auth !== 'string' || !auth.startsWith('Hearth '))
      throw new VerificationError('E_AUTH', 'log gossip: no `authorization: Hearth <token>`');
    const v = await verifyBlobRequestToken(auth.slice(7), { method, path: url, now: this.now() });
    if (v.kind !== 'user') throw new AccessError('E_SCOPE', 'log gossip is for user keys');
    if (method === 'GET') return this.get(dev, v, res);
    return this.put(dev, v, req, res);
  }

  private admit(v: VerifiedBlobRequest): void {
    const r = this.replay.check(`${v.keyText}/${v.nonce}`, v.ts, this.now());
    if (r === 'replay') throw new VerificationError('E_REPLAY', 'log gossip: request replayed');
    if (r === 'stale') throw new VerificationError('E_STALE', 'log gossip: request too old');
  }

  private get(dev: string, v: VerifiedBlobRequest, res: ServerResponse): void {
    const notes = this.devices.get(dev);
    if (!this.off.read && !notes?.has(v.keyText))
      throw new AccessError('E_NO_GRANT', 'publish a cosigned checkpoint of this log first');
    this.admit(v);
    sendJson(res, 200, { list: [...(notes?.values() ?? [])].map((s) => ({ note: s.note })) });
  }

  private async put(
    dev: string,
    v: VerifiedBlobRequest,
    req: IncomingMessage,
    res: ServerResponse,
  ): Promise<void> {
    const body = await readSmallBody(req, MAX_COSIGNED_BODY_BYTES);
    if (createHash('sha256').update(body).digest('base64url') !== v.bh)
      throw new VerificationError('E_BAD_BINDING', 'the body is not the one the token signs');
    const b = decodeCosignedBody(new Uint8Array(body));
    if (b.key !== v.keyText)
      throw new VerificationError('E_BAD_BINDING', 'the note is published by another key than its cosigner');
    if (Buffer.byteLength(b.note) > MAX_COSIGNED_NOTE_BYTES)
      throw new ProtocolError('E_TOO_LARGE', `note larger than ${MAX_COSIGNED_NOTE_BYTES} bytes`);
    let size = 0;
    if (!this.off.notes) {
      const dk = decodeId('deviceKey', b.dk);
      if (!deviceIdMatches(dev, dk))
        throw new VerificationError('E_BAD_BINDING', 'the device key is not the one of this device ID');
      const witness = await cosignerKey(b.key, decodeId('userKey', b.key));
      const opened = await openCosigned(b.note, logOrigin(dev), dk, [witness]);
      if (opened.cosignatures.length !== 1)
        throw new VerificationError('E_WRONG_SIGNER', 'the note carries no cosignature of its publisher');
      size = opened.checkpoint.size;
    }
    this.admit(v);
    let notes = this.devices.get(dev);
    if (notes) this.devices.delete(dev);
    else {
      notes = new Map();
      if (this.devices.size >= MAX_GOSSIP_DEVICES)
        this.devices.delete(this.devices.keys().next().value as string);
    }
    this.devices.set(dev, notes);
    const had = notes.get(b.key);
    if (had && had.size > size)
      throw new ProtocolError('E_BAD_STATE', `a larger checkpoint (${had.size}) of this key is stored`);
    notes.delete(b.key);
    if (notes.size >= MAX_COSIGNED_PER_DEVICE) notes.delete(notes.keys().next().value as string);
    notes.set(b.key, { note: b.note, size });
    res.writeHead(204).end();
  }
}
