/**
 * The blob store's HTTP routes (docs/protocol.md "Blob store", docs/events-contract.md §4):
 *
 * | Method | Path                               | Who                                   |
 * |--------|------------------------------------|---------------------------------------|
 * | PUT    | `/v1/blobs/<dev>/<id>`             | device                                |
 * | POST   | `/v1/blobs/<dev>/<id>/ticket`      | device                                |
 * | GET    | `/v1/blobs/<dev>?kind=&from=&to=`  | device, or a reader (sees its blobs)  |
 * | GET    | `/v1/blobs/<dev>/<id>`             | device, or a user in `readers`        |
 * | DELETE | `/v1/blobs/<dev>/<id>`             | device, or a user in `owners`         |
 * | DELETE | `/v1/blobs/<dev>`                  | device, or an owner of the newest ticket |
 * | GET    | `/v1/blobs/<dev>/usage`            | device                                |
 *
 * Every request carries `authorization: Hearth <token>` (protocol `blobs.ts`). Order of checks:
 * per-address rate, route and names, token (signature, method, path, time window), per-signer
 * rate, who may do what, then the replay cache (only callers allowed to do what they ask reach
 * it), body hash, then the action. Failures
 * answer `{code, message}` with the status of the code ({@link httpStatus}).
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  AccessError,
  type BlobTicket,
  b64u,
  blobRequestFields,
  decodeBlobRequestToken,
  decodeBlobTicket,
  decodeBlobTicketHeader,
  deviceIdFromKey,
  encodeBlobTicket,
  HearthError,
  InternalError,
  isBlobId,
  isId,
  LimitError,
  MAX_BLOB_HOUR,
  MAX_BLOB_TICKET_BYTES,
  MemoryReplayCache,
  ProtocolError,
  STORED_BLOB_KINDS,
  type StoredBlobKind,
  TokenBuckets,
  VerificationError,
  type VerifiedBlobRequest,
  verifyBlobRequestToken,
  verifyBlobTicket,
} from '@hearth/protocol';
import type { Logger } from 'pino';
import type { BlobQuery, BlobStore } from './blob-store.js';
import type { ServerConfig } from './config.js';
import { readSmallBody, sendError, sendJson } from './http-reply.js';

/** The path prefix of the blob store. */
export const BLOBS_PREFIX = '/v1/blobs/';

/**
 * Test-only switches that turn one defence off each, for the controls that show an attack test
 * can fail. Production passes none.
 */
export interface BlobTestHooks {
  unguarded?: {
    /** No token needed, and who may read or delete is not checked. */
    access?: boolean;
    /** The token's signature is not checked (its `k` is believed). */
    signature?: boolean;
    /** The replay cache is not consulted. */
    replay?: boolean;
    /** Every signed request reaches the replay cache, strangers' too (as before the access check). */
    replayForAll?: boolean;
    /** The token's time window is not checked. */
    freshness?: boolean;
    /** Tickets are not verified (signature, `dev` from `dk`, device of the path). */
    ticket?: boolean;
    /** The body's SHA-256 is not compared with the ticket's (the store is given the body's own). */
    digest?: boolean;
    /** Path names are not checked (device and blob IDs are taken as they come, percent-decoded). */
    names?: boolean;
    /** Quotas are not enforced. */
    quota?: boolean;
    /** A re-issued ticket need not have a higher `seq`. */
    seq?: boolean;
  };
  /** The clock (default Date.now). */
  now?: () => number;
}

/** An upload that sends nothing for this long is cut (ms). */
const STALL_MS = 30_000;
/** Most signer and address buckets kept (the oldest goes first). */
const MAX_BUCKETS = 16_384;
/** Largest body of a request that is not a PUT (a ticket, or nothing). */
const MAX_SMALL_BODY = MAX_BLOB_TICKET_BYTES;

type Route =
  | { r: 'list'; dev: string; query: BlobQuery }
  | { r: 'erase'; dev: string }
  | { r: 'usage'; dev: string }
  | { r: 'blob'; dev: string; id: string }
  | { r: 'ticket'; dev: string; id: string };

interface Caller {
  /** The device itself (a device key whose ID is the path's device). */
  device: boolean;
  /** The signer's key text. */
  key: string;
  /** Record the request's nonce (E_REPLAY, E_STALE); called once the caller is known to be allowed. */
  admit(): void;
}

/** The blob routes over one {@link BlobStore}. */
export class BlobHttp {
  private readonly replay: MemoryReplayCache;
  private readonly signers: TokenBuckets;
  private readonly addrs: TokenBuckets;
  /** Per device: the tail of its chain of mutations (put, re-ticket, delete), run one at a time. */
  private readonly locks = new Map<string, Promise<unknown>>();
  private readonly now: () => number;
  private readonly off: NonNullable<BlobTestHooks['unguarded']>;

  /** Called after a device's data was erased here, for the rest of what the server keeps of it. */
  onErase: ((deviceId: string) => void) | undefined;

  constructor(
    private readonly store: BlobStore,
    private readonly cfg: ServerConfig['blobs'],
    private readonly log: Logger,
    test: BlobTestHooks = {},
  ) {
    this.now = test.now ?? Date.now;
    this.off = test.unguarded ?? {};
    // A nonce is remembered as long as a token bearing it can be in the window: 2 × skew.
    this.replay = new MemoryReplayCache(cfg.replayCacheEntries, 2 * cfg.maxSkewMs);
    this.signers = new TokenBuckets(cfg.requestsPerSecond, cfg.requestBurst, MAX_BUCKETS);
    this.addrs = new TokenBuckets(cfg.requestsPerAddressPerSecond, cfg.requestsPerAddressBurst, MAX_BUCKETS);
  }

  /** True when `url` is for the blob store. */
  static handles(url: string | undefined): boolean {
    return (url ?? '').startsWith(BLOBS_PREFIX) || url === '/v1/blobs';
  }

  /** Answer one request (never throws). */
  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      await this.serve(req, res);
    } catch (e) {
      const err = e instanceof HearthError ? e : new InternalError('E_INTERNAL', 'internal error');
      if (!(e instanceof HearthError)) this.log.error({ err: (e as Error).message }, 'blob request failed');
      sendError(res, err);
    }
  }

  private async serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = req.url ?? '/';
    const method = req.method ?? 'GET';
    if (!this.addrs.take(req.socket.remoteAddress ?? '?', this.now()))
      throw new LimitError('E_RATE_LIMITED', 'too many blob requests from this address');
    const route = this.route(method, url);

    // --- who is asking
    let caller: Caller;
    let bh: string | undefined;
    const auth = req.headers.authorization;
    if (this.off.access && !auth) caller = { device: true, key: '(unguarded)', admit: () => {} };
    else {
      if (typeof auth !== 'string' || !auth.startsWith('Hearth '))
        throw new VerificationError('E_AUTH', 'blob request: no `authorization: Hearth <token>`');
      const v = await this.verifyToken(auth.slice(7), method, url);
      if (!this.signers.take(v.keyText, this.now()))
        throw new LimitError('E_RATE_LIMITED', 'too many blob requests from this key');
      const nonceKey = `${v.keyText}/${v.nonce}`;
      let admitted = false;
      caller = {
        device: v.kind === 'device' && deviceIdFromKey(v.key) === route.dev,
        key: v.keyText,
        admit: () => {
          if (this.off.replay || admitted) return;
          admitted = true;
          const verdict = this.replay.check(nonceKey, v.ts, this.now());
          if (verdict === 'replay')
            throw new VerificationError('E_REPLAY', 'blob request: nonce already used');
          if (verdict === 'stale')
            throw new VerificationError('E_STALE', 'blob request: older than the replay window');
        },
      };
      bh = v.bh;
    }
    if (this.off.access) caller.device = true;
    // The replay cache only takes requests of callers allowed to do what they ask (the device now,
    // readers and owners once their ticket is found), so strangers' floods cannot evict its nonces.
    if (caller.device || this.off.replayForAll) caller.admit();

    switch (route.r) {
      case 'blob':
        if (method === 'PUT') return this.put(req, res, route.dev, route.id, caller, bh);
        await this.smallBody(req, bh);
        if (method === 'GET') return this.get(res, route.dev, route.id, caller);
        return this.deleteOne(res, route.dev, route.id, caller);
      case 'ticket':
        return this.reticket(req, res, route.dev, route.id, caller, bh);
      case 'list':
        await this.smallBody(req, bh);
        return this.list(res, route.dev, route.query, caller);
      case 'usage':
        await this.smallBody(req, bh);
        if (!caller.device) throw new AccessError('E_SCOPE', 'usage: only the device itself');
        return this.usage(res, route.dev);
      case 'erase':
        await this.smallBody(req, bh);
        return this.erase(res, route.dev, caller);
    }
  }

  private async verifyToken(token: string, method: string, path: string): Promise<VerifiedBlobRequest> {
    if (this.off.signature || this.off.freshness) {
      const d = decodeBlobRequestToken(token);
      if (this.off.signature) {
        if (d.claims.m !== method || d.claims.p !== path)
          throw new VerificationError('E_BAD_BINDING', 'blob request token: for another method or path');
        return blobRequestFields(d);
      }
      return verifyBlobRequestToken(token, { method, path, now: d.claims.ts });
    }
    return verifyBlobRequestToken(token, { method, path, now: this.now(), maxSkewMs: this.cfg.maxSkewMs });
  }

  /** Parse the method and the raw URL into a route; E_NOT_FOUND, E_BAD_METHOD, E_BAD_ID, E_SCHEMA. */
  private route(method: string, url: string): Route {
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    const query = q < 0 ? '' : url.slice(q + 1);
    if (!path.startsWith(BLOBS_PREFIX)) throw new ProtocolError('E_NOT_FOUND', 'no such blob route');
    let parts = path.slice(BLOBS_PREFIX.length).split('/');
    if (this.off.names) {
      try {
        parts = parts.map(decodeURIComponent);
      } catch {}
    }
    const [dev, id, tail, ...rest] = parts;
    if (dev === undefined || rest.length > 0) throw new ProtocolError('E_NOT_FOUND', 'no such blob route');
    const checkDev = () => {
      if (!this.off.names && !isId('deviceId', dev)) throw new ProtocolError('E_BAD_ID', 'not a device ID');
    };
    const checkId = (i: string) => {
      if (!this.off.names && !isBlobId(i))
        throw new ProtocolError('E_BAD_ID', 'not a blob ID (22 b64u characters)');
    };
    const allow = (...m: string[]) => {
      if (!m.includes(method)) throw new ProtocolError('E_BAD_METHOD', `${method} not allowed here`);
    };
    if (query !== '' && !(id === undefined && method === 'GET'))
      throw new ProtocolError('E_SCHEMA', 'no query allowed on this route');
    if (id === undefined) {
      checkDev();
      allow('GET', 'DELETE');
      if (method === 'DELETE') return { r: 'erase', dev };
      return { r: 'list', dev, query: parseQuery(query) };
    }
    if (tail === undefined && id === 'usage') {
      checkDev();
      allow('GET');
      return { r: 'usage', dev };
    }
    checkDev();
    checkId(id);
    if (tail === undefined) {
      allow('GET', 'PUT', 'DELETE');
      return { r: 'blob', dev, id };
    }
    if (tail !== 'ticket') throw new ProtocolError('E_NOT_FOUND', 'no such blob route');
    allow('POST');
    return { r: 'ticket', dev, id };
  }

  /** Read a small body (≤ {@link MAX_SMALL_BODY}) and check it against the token's `bh`. */
  private async smallBody(req: IncomingMessage, bh: string | undefined): Promise<Buffer> {
    const body = await readSmallBody(req, MAX_SMALL_BODY);
    if (bh !== undefined && !this.off.digest && b64u(createHash('sha256').update(body).digest()) !== bh)
      throw new VerificationError('E_BAD_BINDING', 'blob request: body is not the one signed');
    return body;
  }

  private async ticketOf(t: BlobTicket, dev: string, id: string): Promise<void> {
    if (this.off.ticket) return;
    await verifyBlobTicket(t, dev);
    if (t.id !== id) throw new VerificationError('E_BAD_BINDING', 'blob ticket: for another blob ID');
  }

  /** Run `f` after every earlier mutation of `dev`. */
  private locked<T>(dev: string, f: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(dev) ?? Promise.resolve();
    const run = prev.then(f, f);
    const tail = run.catch(() => {});
    this.locks.set(dev, tail);
    void tail.then(() => {
      if (this.locks.get(dev) === tail) this.locks.delete(dev);
    });
    return run;
  }

  private async put(
    req: IncomingMessage,
    res: ServerResponse,
    dev: string,
    id: string,
    caller: Caller,
    bh: string | undefined,
  ): Promise<void> {
    if (!caller.device) throw new AccessError('E_SCOPE', 'only the device stores its blobs');
    const t = decodeBlobTicketHeader(req.headers['hearth-ticket']);
    await this.ticketOf(t, dev, id);
    if (t.size > this.cfg.maxBlobBytes)
      throw new ProtocolError('E_TOO_LARGE', `blob larger than ${this.cfg.maxBlobBytes} bytes`);
    const cl = req.headers['content-length'];
    if (cl !== undefined && Number(cl) !== t.size && !this.off.digest)
      throw new VerificationError('E_BLOB_DIGEST', 'content-length differs from the ticket');
    if (bh !== undefined && bh !== t.sha && !this.off.digest)
      throw new VerificationError('E_BAD_BINDING', 'blob request: signed body hash is not the ticket sha');
    const status = await this.locked(dev, async () => {
      const old = await this.store.getTicket(dev, id);
      if (old && old.sha === t.sha) {
        // The same upload again (a retry after a lost answer) is fine; another ticket needs a higher seq.
        if (t.seq > old.seq) await this.store.setTicket(dev, id, t);
        else if (!this.off.seq && (t.seq < old.seq || encodeBlobTicket(t) !== encodeBlobTicket(old)))
          throw new AccessError(
            'E_STALE_TICKET',
            `blob ticket seq ${t.seq} is not above the stored ${old.seq}`,
          );
        return 200;
      }
      if (old) throw new ProtocolError('E_BAD_STATE', 'a blob of this ID exists with other content');
      if (!this.off.quota) {
        const u = await this.store.usage(dev);
        if (u.bytes + t.size > this.cfg.quotaBytes || u.count + 1 > this.cfg.quotaCount)
          throw new LimitError('E_QUOTA', "the device's blob quota is spent");
      }
      const body = req as AsyncIterable<Uint8Array>;
      // A stalled upload holds a staging file and the device's lock: cut it.
      req.setTimeout(STALL_MS, () => req.destroy(new Error('upload stalled')));
      if (this.off.digest) {
        const own = await withOwnDigest(t, body);
        await this.store.put(dev, id, own.ticket, own.body);
      } else await this.store.put(dev, id, t, body);
      return 201;
    });
    if (status === 200) {
      // The body is not needed: answer, and let the connection go.
      res.writeHead(200, { 'content-type': 'application/json', connection: 'close' }).end('{}');
      return;
    }
    res.writeHead(201, { 'content-type': 'application/json' }).end('{}');
  }

  private async reticket(
    req: IncomingMessage,
    res: ServerResponse,
    dev: string,
    id: string,
    caller: Caller,
    bh: string | undefined,
  ): Promise<void> {
    const body = await this.smallBody(req, bh);
    if (!caller.device) throw new AccessError('E_SCOPE', 'only the device re-issues its tickets');
    const t = decodeBlobTicket(new Uint8Array(body));
    await this.ticketOf(t, dev, id);
    await this.locked(dev, async () => {
      const old = await this.store.getTicket(dev, id);
      if (!old) throw new ProtocolError('E_NOT_FOUND', 'no such blob');
      if (old.sha !== t.sha || old.size !== t.size || old.kind !== t.kind || old.hr !== t.hr)
        throw new VerificationError('E_BAD_BINDING', 'blob ticket: describes other content');
      if (t.seq <= old.seq && !this.off.seq)
        throw new AccessError(
          'E_STALE_TICKET',
          `blob ticket seq ${t.seq} is not above the stored ${old.seq}`,
        );
      await this.store.setTicket(dev, id, t);
    });
    res.writeHead(204).end();
  }

  private may(t: BlobTicket, caller: Caller, list: 'readers' | 'owners'): boolean {
    return caller.device || (t[list] as string[]).includes(caller.key);
  }

  private async get(res: ServerResponse, dev: string, id: string, caller: Caller): Promise<void> {
    const t = await this.store.getTicket(dev, id);
    // To anyone but the device, a blob it may not read and one that is not there look the same.
    if (!t || !this.may(t, caller, 'readers')) {
      if (caller.device) throw new ProtocolError('E_NOT_FOUND', 'no such blob');
      throw new AccessError('E_NO_GRANT', 'not a reader of this blob');
    }
    if (!caller.device) caller.admit();
    const got = await this.store.get(dev, id);
    if (!got) throw new ProtocolError('E_NOT_FOUND', 'no such blob');
    res.writeHead(200, {
      'content-type': 'application/octet-stream',
      'content-length': got.meta.size,
      'cache-control': 'no-store',
    });
    try {
      for await (const chunk of got.body) {
        if (!res.write(chunk)) await new Promise<void>((r) => res.once('drain', r).once('close', r));
        if (res.destroyed) break;
      }
    } finally {
      (got.body as { destroy?: () => void }).destroy?.();
    }
    res.end();
  }

  private async deleteOne(res: ServerResponse, dev: string, id: string, caller: Caller): Promise<void> {
    await this.locked(dev, async () => {
      const t = await this.store.getTicket(dev, id);
      if (!t || !this.may(t, caller, 'owners')) {
        if (caller.device) throw new ProtocolError('E_NOT_FOUND', 'no such blob');
        throw new AccessError('E_NO_GRANT', 'not an owner of this blob');
      }
      if (!caller.device) caller.admit();
      await this.store.delete(dev, id);
    });
    res.writeHead(204).end();
  }

  private async erase(res: ServerResponse, dev: string, caller: Caller): Promise<void> {
    await this.locked(dev, async () => {
      if (!caller.device) {
        const t = await this.store.latestTicket(dev);
        if (!t?.owners.includes(caller.key as never))
          throw new AccessError('E_NO_GRANT', "not an owner of the device's newest ticket");
        caller.admit();
      }
      await this.store.deleteAll(dev);
    });
    this.onErase?.(dev);
    this.log.info({ dev: dev.slice(0, 13) }, 'blob store: erased every blob of a device');
    res.writeHead(204).end();
  }

  private async list(res: ServerResponse, dev: string, q: BlobQuery, caller: Caller): Promise<void> {
    const all = await this.store.list(dev, q);
    const blobs = all
      .filter((m) => this.may(m.ticket, caller, 'readers'))
      .map((m) => ({ id: m.id, kind: m.kind, hr: m.hr, size: m.size }));
    // An empty listing tells a stranger nothing, and its nonce is not worth a cache entry.
    if (!caller.device && blobs.length > 0) caller.admit();
    sendJson(res, 200, { blobs });
  }

  private async usage(res: ServerResponse, dev: string): Promise<void> {
    const u = await this.store.usage(dev);
    sendJson(res, 200, { bytes: u.bytes, count: u.count, quotaBytes: this.cfg.quotaBytes });
  }
}

/** The query of a listing: only `kind`, `from`, `to`, each at most once (E_SCHEMA otherwise). */
export function parseQuery(query: string): BlobQuery {
  const out: BlobQuery = {};
  if (query === '') return out;
  if (query.length > 200) throw new ProtocolError('E_SCHEMA', 'query too long');
  const seen = new Set<string>();
  for (const pair of query.split('&')) {
    const eq = pair.indexOf('=');
    const k = eq < 0 ? pair : pair.slice(0, eq);
    const v = eq < 0 ? '' : pair.slice(eq + 1);
    if (seen.has(k)) throw new ProtocolError('E_SCHEMA', `query: ${k} twice`);
    seen.add(k);
    if (k === 'kind') {
      if (!(STORED_BLOB_KINDS as readonly string[]).includes(v))
        throw new ProtocolError('E_SCHEMA', 'query: kind');
      out.kind = v as StoredBlobKind;
    } else if (k === 'from' || k === 'to') {
      if (!/^(0|[1-9][0-9]{0,9})$/.test(v) || Number(v) > MAX_BLOB_HOUR)
        throw new ProtocolError('E_SCHEMA', `query: ${k} must be an hour number`);
      out[k] = Number(v);
    } else throw new ProtocolError('E_SCHEMA', 'query: unknown key');
  }
  if (out.from !== undefined && out.to !== undefined && out.from > out.to)
    throw new ProtocolError('E_SCHEMA', 'query: from after to');
  return out;
}

/** Control only (`unguarded.digest`): read the whole body, and rewrite the ticket to match it. */
async function withOwnDigest(
  t: BlobTicket,
  body: AsyncIterable<Uint8Array>,
): Promise<{ ticket: BlobTicket; body: AsyncIterable<Uint8Array> }> {
  const chunks: Uint8Array[] = [];
  const h = createHash('sha256');
  let n = 0;
  for await (const c of body) {
    chunks.push(c);
    h.update(c);
    n += c.length;
  }
  return {
    ticket: { ...t, size: n, sha: b64u(h.digest()) },
    body: (async function* () {
      yield* chunks;
    })(),
  };
}
