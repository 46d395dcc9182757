/**
 * The blob store through the real server on 127.0.0.1 with real Ed25519 keys and real files.
 * Every attack test has a control: the same attack against a server with that one defence turned
 * off (a test-only switch) succeeds, so the attack test can fail.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  type BlobTicket,
  type BlobTicketInput,
  b64u,
  buildBlobRequestToken,
  deviceIdFromKey,
  encodeBlobTicket,
  encodeBlobTicketHeader,
  encodeId,
  isErrorCode,
  newBlobId,
  ProtocolError,
  type SignerKind,
  signBlobTicket,
  WebCryptoSigner,
} from '@hearth/protocol';
import fc from 'fast-check';
import {
  type BlobTestHooks,
  type HearthServer,
  parseQuery,
  type ServerConfigInput,
  startServer,
} from '../src/index.js';
import { tempDir } from './helpers.js';

const sha = (b: Uint8Array) => new Uint8Array(createHash('sha256').update(b).digest());

interface Srv {
  srv: HearthServer;
  dir: string;
  close(): Promise<void>;
}

async function server(
  hooks: BlobTestHooks & { store?: { uncheckedNames?: boolean } } = {},
  blobs: ServerConfigInput['blobs'] = {},
): Promise<Srv> {
  const tmp = tempDir();
  const srv = await startServer(
    {
      dataDir: tmp.dir,
      host: '127.0.0.1',
      port: 0,
      tls: { mode: 'off' },
      relay: { enabled: false },
      serveViewer: false,
      blobs,
    },
    { blobTestHooks: hooks },
  );
  return {
    srv,
    dir: tmp.dir,
    close: async () => {
      await srv.close();
      tmp.rm();
    },
  };
}

interface Party {
  signer: WebCryptoSigner;
  kind: SignerKind;
  key: string;
}
async function party(kind: SignerKind): Promise<Party> {
  const signer = await WebCryptoSigner.generate();
  return { signer, kind, key: encodeId(kind === 'device' ? 'deviceKey' : 'userKey', signer.publicKey) };
}
const devOf = (p: Party) => deviceIdFromKey(p.signer.publicKey);

interface Req {
  /** Sign as this party (none: no authorization header). */
  as?: Party;
  body?: Uint8Array;
  /** Sign this body's hash instead of the one sent. */
  signBody?: Uint8Array;
  headers?: Record<string, string>;
  /** Override what is signed. */
  signPath?: string;
  ts?: number;
  nonce?: Uint8Array;
  /** Use this token verbatim. */
  token?: string;
}

async function token(method: string, path: string, o: Req): Promise<string> {
  return buildBlobRequestToken(o.as!.signer, o.as!.kind, {
    method,
    path: o.signPath ?? path,
    bodySha256: sha(o.signBody ?? o.body ?? new Uint8Array()),
    ts: o.ts ?? Date.now(),
    nonce: o.nonce ?? new Uint8Array(randomBytes(16)),
  });
}

async function call(s: Srv, method: string, path: string, o: Req = {}) {
  const headers: Record<string, string> = { ...(o.headers ?? {}) };
  const tk = o.token ?? (o.as ? await token(method, path, o) : undefined);
  if (tk) headers.authorization = `Hearth ${tk}`;
  const r = await fetch(`${s.srv.url}${path}`, {
    method,
    headers,
    ...(o.body ? { body: new Uint8Array(o.body) } : {}),
  });
  const bytes = new Uint8Array(await r.arrayBuffer());
  let code: string | undefined;
  if (r.status >= 400) code = (JSON.parse(new TextDecoder().decode(bytes)) as { code: string }).code;
  return { status: r.status, bytes, code, tk };
}

async function ticket(
  dev: Party,
  body: Uint8Array,
  over: Partial<BlobTicketInput> = {},
): Promise<BlobTicket> {
  return signBlobTicket(dev.signer, {
    id: newBlobId(),
    kind: 'clip',
    hr: 490_000,
    size: body.length,
    sha256: sha(body),
    readers: [],
    owners: [],
    seq: 1,
    ...over,
  });
}

async function put(s: Srv, dev: Party, t: BlobTicket, body: Uint8Array, as: Party = dev) {
  return call(s, 'PUT', `/v1/blobs/${t.dev}/${t.id}`, {
    as,
    body,
    headers: { 'hearth-ticket': encodeBlobTicketHeader(t) },
  });
}

/** Every file under `dir`, with its bytes. */
function dump(dir: string): { path: string; bytes: Buffer }[] {
  const out: { path: string; bytes: Buffer }[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    const p = join(e.parentPath, e.name);
    if (e.isFile()) out.push({ path: p, bytes: readFileSync(p) });
  }
  return out;
}
const contains = (files: { bytes: Buffer }[], needle: Uint8Array) =>
  files.some((f) => f.bytes.includes(Buffer.from(needle)));

describe('blob store: round trip', () => {
  let s: Srv;
  let dev: Party;
  let alice: Party;
  let bob: Party;
  before(async () => {
    s = await server();
    dev = await party('device');
    alice = await party('user');
    bob = await party('user');
  });
  after(() => s.close());

  it('device uploads, lists, reads, re-uploads (200), the reader reads, the owner deletes', async () => {
    const body = new Uint8Array(randomBytes(200_000));
    const t = await ticket(dev, body, { readers: [alice.key], owners: [bob.key], kind: 'event' });
    const p = await put(s, dev, t, body);
    assert.equal(p.status, 201);
    assert.equal((await put(s, dev, t, body)).status, 200);
    const file = join(s.dir, 'blobs', t.dev, t.id);
    assert.deepEqual(new Uint8Array(readFileSync(file)), body);
    assert.equal(readFileSync(`${file}.ticket`, 'utf8'), encodeBlobTicket(t));
    assert.equal(statSync(file).mode & 0o777, 0o600);

    const l = await call(s, 'GET', `/v1/blobs/${t.dev}?kind=event&from=489999&to=490000`, { as: dev });
    assert.equal(l.status, 200);
    assert.deepEqual(JSON.parse(new TextDecoder().decode(l.bytes)), {
      blobs: [{ id: t.id, kind: 'event', hr: 490_000, size: body.length }],
    });
    const none = await call(s, 'GET', `/v1/blobs/${t.dev}?kind=clip`, { as: dev });
    assert.deepEqual(JSON.parse(new TextDecoder().decode(none.bytes)), { blobs: [] });
    // Alice (a reader) sees it; Bob (an owner, not a reader) does not.
    const la = await call(s, 'GET', `/v1/blobs/${t.dev}`, { as: alice });
    assert.equal(JSON.parse(new TextDecoder().decode(la.bytes)).blobs.length, 1);
    const lb = await call(s, 'GET', `/v1/blobs/${t.dev}`, { as: bob });
    assert.equal(JSON.parse(new TextDecoder().decode(lb.bytes)).blobs.length, 0);

    const g = await call(s, 'GET', `/v1/blobs/${t.dev}/${t.id}`, { as: alice });
    assert.equal(g.status, 200);
    assert.deepEqual(g.bytes, body);
    const gd = await call(s, 'GET', `/v1/blobs/${t.dev}/${t.id}`, { as: dev });
    assert.deepEqual(gd.bytes, body);

    const u = await call(s, 'GET', `/v1/blobs/${t.dev}/usage`, { as: dev });
    assert.deepEqual(JSON.parse(new TextDecoder().decode(u.bytes)), {
      bytes: body.length,
      count: 1,
      quotaBytes: 1024 * 1024 * 1024,
    });
    assert.equal((await call(s, 'DELETE', `/v1/blobs/${t.dev}/${t.id}`, { as: alice })).code, 'E_NO_GRANT');
    assert.equal((await call(s, 'DELETE', `/v1/blobs/${t.dev}/${t.id}`, { as: bob })).status, 204);
    assert.equal(existsSync(file), false);
    assert.equal(existsSync(`${file}.ticket`), false);
    assert.equal((await call(s, 'GET', `/v1/blobs/${t.dev}/${t.id}`, { as: dev })).code, 'E_NOT_FOUND');
  });

  it('the store survives a restart (the index is rebuilt from the files)', async () => {
    const s2 = await server();
    const body = new Uint8Array(randomBytes(1000));
    const t = await ticket(dev, body);
    assert.equal((await put(s2, dev, t, body)).status, 201);
    await s2.srv.close();
    const again = await startServer(
      { dataDir: s2.dir, host: '127.0.0.1', port: 0, tls: { mode: 'off' }, relay: { enabled: false } },
      {},
    );
    const s3: Srv = { srv: again, dir: s2.dir, close: s2.close };
    try {
      const g = await call(s3, 'GET', `/v1/blobs/${t.dev}/${t.id}`, { as: dev });
      assert.deepEqual(g.bytes, body);
    } finally {
      await again.close();
      await s2.close().catch(() => {});
    }
  });

  it('a re-issued ticket with a higher seq takes effect (a reader removed can no longer read)', async () => {
    const body = new Uint8Array(randomBytes(500));
    const t1 = await ticket(dev, body, { readers: [alice.key], seq: 1 });
    assert.equal((await put(s, dev, t1, body)).status, 201);
    assert.equal((await call(s, 'GET', `/v1/blobs/${t1.dev}/${t1.id}`, { as: alice })).status, 200);
    const t2 = await ticket(dev, body, { id: t1.id, readers: [], seq: 2 });
    const tb = new TextEncoder().encode(encodeBlobTicket(t2));
    assert.equal(
      (await call(s, 'POST', `/v1/blobs/${t1.dev}/${t1.id}/ticket`, { as: dev, body: tb })).status,
      204,
    );
    assert.equal((await call(s, 'GET', `/v1/blobs/${t1.dev}/${t1.id}`, { as: alice })).code, 'E_NO_GRANT');
  });
});

describe('blob store: rules', () => {
  it('erasing a device takes an owner of its newest ticket, not of an older one', async () => {
    const s = await server();
    try {
      const dev = await party('device');
      const old = await party('user');
      const cur = await party('user');
      await seed(s, dev, { owners: [old.key] });
      await seed(s, dev, { owners: [cur.key] });
      const d = devOf(dev);
      assert.equal((await call(s, 'DELETE', `/v1/blobs/${d}`, { as: old })).code, 'E_NO_GRANT');
      assert.equal((await call(s, 'DELETE', `/v1/blobs/${d}`, { as: cur })).status, 204);
      assert.equal(existsSync(join(s.dir, 'blobs', d)), false);
    } finally {
      await s.close();
    }
  });

  it('parallel uploads cannot overrun the quota together (one at a time per device)', async () => {
    const s = await server({}, { quotaCount: 2 });
    try {
      const dev = await party('device');
      const bodies = [0, 1, 2, 3].map(() => new Uint8Array(randomBytes(50_000)));
      const rs = await Promise.all(bodies.map(async (b) => put(s, dev, await ticket(dev, b), b)));
      assert.deepEqual(rs.map((r) => r.status).sort(), [201, 201, 507, 507]);
      const u = await call(s, 'GET', `/v1/blobs/${devOf(dev)}/usage`, { as: dev });
      assert.equal(JSON.parse(new TextDecoder().decode(u.bytes)).count, 2);
    } finally {
      await s.close();
    }
  });

  it('re-uploads follow seq (E_STALE_TICKET); the same ID with other bytes is refused (E_BAD_STATE); the device may not list with a bad query (E_SCHEMA)', async () => {
    const s = await server();
    try {
      const dev = await party('device');
      const { t, body } = await seed(s, dev);
      // Re-uploading the same bytes: a higher seq replaces the ticket, a lower or another one at the same seq is refused.
      assert.equal((await put(s, dev, await ticket(dev, body, { id: t.id, seq: 2 }), body)).status, 200);
      assert.equal((await put(s, dev, t, body)).code, 'E_STALE_TICKET');
      assert.equal(
        (await put(s, dev, await ticket(dev, body, { id: t.id, seq: 2, kind: 'event' }), body)).code,
        'E_STALE_TICKET',
      );
      const other = new Uint8Array(randomBytes(10));
      assert.equal((await put(s, dev, await ticket(dev, other, { id: t.id }), other)).code, 'E_BAD_STATE');
      assert.equal((await call(s, 'GET', `/v1/blobs/${t.dev}?kind=movie`, { as: dev })).code, 'E_SCHEMA');
      assert.equal(
        (await call(s, 'GET', `/v1/blobs/${t.dev}/usage`, { as: await party('user') })).code,
        'E_SCOPE',
      );
    } finally {
      await s.close();
    }
  });
});

/** Store one blob readable by `reader` on `s`; returns its ticket and body. */
async function seed(s: Srv, dev: Party, over: Partial<BlobTicketInput> = {}) {
  const body = new Uint8Array(randomBytes(4096));
  const t = await ticket(dev, body, over);
  const r = await put(s, dev, t, body);
  assert.equal(r.status, 201, r.code);
  return { t, body };
}

describe('blob store: attacks (each with a control)', () => {
  let dev: Party;
  let other: Party;
  let alice: Party;
  let mallory: Party;
  before(async () => {
    dev = await party('device');
    other = await party('device');
    alice = await party('user');
    mallory = await party('user');
  });

  /** Run `attack` against a guarded server (must fail with `code`) and an unguarded one (must work). */
  async function attack(
    off: NonNullable<BlobTestHooks['unguarded']>,
    code: string,
    run: (s: Srv) => Promise<{ status: number; code?: string | undefined }>,
    o: {
      store?: { uncheckedNames?: boolean };
      blobs?: ServerConfigInput['blobs'];
      works?: (r: { status: number }) => boolean;
    } = {},
  ) {
    const guarded = await server({}, o.blobs);
    try {
      const r = await run(guarded);
      assert.equal(r.code, code, `guarded: expected ${code}, got ${r.status} ${r.code}`);
    } finally {
      await guarded.close();
    }
    const open = await server({ unguarded: off, ...(o.store ? { store: o.store } : {}) }, o.blobs);
    try {
      const r = await run(open);
      assert.ok(
        o.works ? o.works(r) : r.status < 300,
        `control: the attack should work, got ${r.status} ${r.code}`,
      );
    } finally {
      await open.close();
    }
  }

  it('a stranger without a token cannot read a blob (E_AUTH); control: with access checks off it can', async () => {
    await attack({ access: true }, 'E_AUTH', async (s) => {
      const { t } = await seed(s, dev, { readers: [alice.key] });
      return call(s, 'GET', `/v1/blobs/${t.dev}/${t.id}`);
    });
  });

  it('a token with a bad signature is refused (E_BAD_SIGNATURE); control: signature check off', async () => {
    await attack({ signature: true }, 'E_BAD_SIGNATURE', async (s) => {
      const { t } = await seed(s, dev, { readers: [alice.key] });
      const path = `/v1/blobs/${t.dev}/${t.id}`;
      // Mallory claims to be Alice: Alice's key in `k`, Mallory's signature.
      const real = await token('GET', path, { as: mallory });
      const [json, sig] = real.split('.') as [string, string];
      const claims = JSON.parse(Buffer.from(json, 'base64url').toString());
      claims.k = alice.key;
      const forged = `${b64u(new TextEncoder().encode(canonical(claims)))}.${sig}`;
      return call(s, 'GET', path, { token: forged });
    });
  });

  it('another key (not in readers) cannot read (E_NO_GRANT), nor list it; control: access checks off', async () => {
    await attack({ access: true }, 'E_NO_GRANT', async (s) => {
      const { t } = await seed(s, dev, { readers: [alice.key] });
      const l = await call(s, 'GET', `/v1/blobs/${t.dev}`, { as: mallory });
      const listed = JSON.parse(new TextDecoder().decode(l.bytes)).blobs.length;
      const r = await call(s, 'GET', `/v1/blobs/${t.dev}/${t.id}`, { as: mallory });
      return r.status === 200 ? { ...r, status: listed === 1 ? 200 : 599 } : r;
    });
  });

  it('another device cannot read, delete or upload for this device; control: access checks off', async () => {
    await attack({ access: true }, 'E_NO_GRANT', async (s) => {
      const { t } = await seed(s, dev);
      return call(s, 'DELETE', `/v1/blobs/${t.dev}/${t.id}`, { as: other });
    });
    await attack({ access: true }, 'E_SCOPE', async (s) => {
      const body = new Uint8Array(randomBytes(100));
      const t = await ticket(dev, body);
      return put(s, dev, t, body, other);
    });
  });

  it('a replayed request is refused (E_REPLAY); control: replay cache off', async () => {
    await attack({ replay: true }, 'E_REPLAY', async (s) => {
      const { t } = await seed(s, dev, { readers: [alice.key] });
      const path = `/v1/blobs/${t.dev}/${t.id}`;
      const first = await call(s, 'GET', path, { as: alice });
      assert.equal(first.status, 200);
      return call(s, 'GET', path, { token: first.tk! });
    });
  });

  it("strangers' requests cannot evict a reader's nonce from the replay cache; control: every request reaches the cache", async () => {
    const run = async (s: Srv) => {
      const { t } = await seed(s, dev, { readers: [alice.key] });
      const path = `/v1/blobs/${t.dev}/${t.id}`;
      const first = await call(s, 'GET', path, { as: alice });
      assert.equal(first.status, 200);
      // Strangers with fresh keys flood the store with valid signatures (they may read nothing).
      for (let i = 0; i < 8; i++) {
        const r = await call(s, 'GET', path, { as: await party('user') });
        assert.equal(r.code, 'E_NO_GRANT');
      }
      return call(s, 'GET', path, { token: first.tk! });
    };
    const guarded = await server({}, { replayCacheEntries: 4 });
    try {
      assert.equal((await run(guarded)).code, 'E_REPLAY');
    } finally {
      await guarded.close();
    }
    const open = await server({ unguarded: { replayForAll: true } }, { replayCacheEntries: 4 });
    try {
      assert.equal(
        (await run(open)).status,
        200,
        'control: the flood evicted the nonce and the replay worked',
      );
    } finally {
      await open.close();
    }
  });

  it('a stale request (ts 6 min old, or 6 min ahead) is refused (E_STALE); control: window off', async () => {
    for (const d of [-6 * 60_000, 6 * 60_000])
      await attack({ freshness: true }, 'E_STALE', async (s) => {
        const { t } = await seed(s, dev, { readers: [alice.key] });
        return call(s, 'GET', `/v1/blobs/${t.dev}/${t.id}`, { as: alice, ts: Date.now() + d });
      });
  });

  it('a token signed for another path or method is refused (E_BAD_BINDING)', async () => {
    const s = await server();
    try {
      const a = await seed(s, dev, { readers: [alice.key] });
      const b = await seed(s, dev, { readers: [mallory.key] });
      const r = await call(s, 'GET', `/v1/blobs/${a.t.dev}/${a.t.id}`, {
        as: mallory,
        signPath: `/v1/blobs/${b.t.dev}/${b.t.id}`,
      });
      assert.equal(r.code, 'E_BAD_BINDING');
    } finally {
      await s.close();
    }
  });

  it('a ticket signed by another device for this dev is refused (E_BAD_BINDING); control: ticket checks off', async () => {
    await attack({ ticket: true }, 'E_BAD_BINDING', async (s) => {
      const body = new Uint8Array(randomBytes(100));
      const t = await ticket(other, body);
      // Claim it is this device's: the other device's key, this device's ID (the signature no longer covers it either).
      const forged = { ...t, dev: devOf(dev) } as BlobTicket;
      return call(s, 'PUT', `/v1/blobs/${forged.dev}/${forged.id}`, {
        as: dev,
        body,
        headers: { 'hearth-ticket': encodeBlobTicketHeader(forged) },
      });
    });
  });

  it("a ticket for another device's path is refused (E_BAD_BINDING); control: ticket checks off", async () => {
    await attack({ ticket: true }, 'E_BAD_BINDING', async (s) => {
      const body = new Uint8Array(randomBytes(100));
      const t = await ticket(other, body);
      return call(s, 'PUT', `/v1/blobs/${devOf(dev)}/${t.id}`, {
        as: dev,
        body,
        headers: { 'hearth-ticket': encodeBlobTicketHeader(t) },
      });
    });
  });

  it('a body whose SHA-256 differs from the ticket is refused and not kept (E_BLOB_DIGEST); control: digest check off', async () => {
    let dir = '';
    await attack({ digest: true }, 'E_BLOB_DIGEST', async (s) => {
      dir = s.dir;
      const body = new Uint8Array(randomBytes(100_000));
      const t = await ticket(dev, body);
      const evil = new Uint8Array(body);
      evil[500] = evil[500]! ^ 1;
      const r = await call(s, 'PUT', `/v1/blobs/${t.dev}/${t.id}`, {
        as: dev,
        body: evil,
        headers: { 'hearth-ticket': encodeBlobTicketHeader(t) },
        // The token claims the ticket's body (a proxy altered it on the way, or a lying client).
        signBody: body,
      });
      if (r.code) {
        assert.equal(contains(dump(join(s.dir)), evil.subarray(0, 4096)), false, 'nothing of it is kept');
        assert.equal(existsSync(join(s.dir, 'blobs', t.dev, t.id)), false);
      }
      return r;
    });
    assert.ok(dir);
  });

  it('path traversal and malformed IDs are refused (E_BAD_ID) and write nothing outside; control: name checks off', async () => {
    let outside = '';
    await attack(
      { names: true, ticket: true },
      'E_BAD_ID',
      async (s) => {
        const body = new Uint8Array(randomBytes(100));
        const t = await ticket(dev, body);
        const evilId = '..%2F..%2Fpwned';
        outside = join(s.dir, 'pwned');
        const r = await call(s, 'PUT', `/v1/blobs/${t.dev}/${evilId}`, {
          as: dev,
          body,
          headers: { 'hearth-ticket': b64u(new TextEncoder().encode(encodeBlobTicket(t))) },
        });
        const wrote = existsSync(outside);
        if (r.code) assert.equal(wrote, false);
        return wrote ? { status: 201 } : r;
      },
      { store: { uncheckedNames: true } },
    );
    // And every other malformed name, on a guarded server.
    const s = await server();
    try {
      const d = devOf(dev);
      for (const p of [
        `/v1/blobs/${d}/AAAAAAAAAAAAAAAAAAAAA`, // 21 chars
        `/v1/blobs/${d}/AAAAAAAAAAAAAAAAAAAAAAA`, // 23 chars
        `/v1/blobs/${d}/AAAAAAAAAAAAAAAAAAAAAB`, // not canonical (padding bits set)
        `/v1/blobs/${d}/AAAAAAAAAAAAAAAAAAAA.A`,
        `/v1/blobs/${d}/%2e%2e`,
        `/v1/blobs/hdid_nope/AAAAAAAAAAAAAAAAAAAAAA`,
        `/v1/blobs/${d.toUpperCase()}/AAAAAAAAAAAAAAAAAAAAAA`,
      ]) {
        const r = await call(s, 'GET', p, { as: dev });
        assert.equal(r.code, 'E_BAD_ID', p);
      }
      assert.equal(
        (await call(s, 'GET', `/v1/blobs/${d}/AAAAAAAAAAAAAAAAAAAAAA/x`, { as: dev })).code,
        'E_NOT_FOUND',
      );
      assert.equal((await call(s, 'PATCH', `/v1/blobs/${d}`, {})).code, 'E_BAD_METHOD');
    } finally {
      await s.close();
    }
  });

  it('over quota (bytes, count) is refused (E_QUOTA); control: quota off', async () => {
    await attack(
      { quota: true },
      'E_QUOTA',
      async (s) => {
        await seed(s, dev);
        const body = new Uint8Array(randomBytes(4096));
        return put(s, dev, await ticket(dev, body), body);
      },
      { blobs: { quotaBytes: 6000 } },
    );
    await attack(
      { quota: true },
      'E_QUOTA',
      async (s) => {
        await seed(s, dev);
        const body = new Uint8Array(randomBytes(10));
        return put(s, dev, await ticket(dev, body), body);
      },
      { blobs: { quotaCount: 1 } },
    );
  });

  it('a body larger than maxBlobBytes is refused (E_TOO_LARGE)', async () => {
    const s = await server({}, { maxBlobBytes: 1000 });
    try {
      const body = new Uint8Array(randomBytes(1001));
      assert.equal((await put(s, dev, await ticket(dev, body), body)).code, 'E_TOO_LARGE');
    } finally {
      await s.close();
    }
  });

  it('a lower-seq ticket (rollback of a revocation) is refused (E_STALE_TICKET); control: seq check off', async () => {
    await attack({ seq: true }, 'E_STALE_TICKET', async (s) => {
      const body = new Uint8Array(randomBytes(300));
      const t1 = await ticket(dev, body, { readers: [alice.key, mallory.key], seq: 1 });
      assert.equal((await put(s, dev, t1, body)).status, 201);
      const t2 = await ticket(dev, body, { id: t1.id, readers: [alice.key], seq: 2 });
      const b2 = new TextEncoder().encode(encodeBlobTicket(t2));
      assert.equal(
        (await call(s, 'POST', `/v1/blobs/${t1.dev}/${t1.id}/ticket`, { as: dev, body: b2 })).status,
        204,
      );
      // Someone replays the old ticket (a captured device upload); Mallory would read again.
      const b1 = new TextEncoder().encode(encodeBlobTicket(t1));
      const r = await call(s, 'POST', `/v1/blobs/${t1.dev}/${t1.id}/ticket`, { as: dev, body: b1 });
      if (r.code) return r;
      return call(s, 'GET', `/v1/blobs/${t1.dev}/${t1.id}`, { as: mallory });
    });
  });

  it('S8: after DELETE /v1/blobs/<dev>, no file or byte of the device is left in the data dir; control: before it, there is', async () => {
    const s = await server();
    try {
      const owner = alice;
      const a = await seed(s, dev, { owners: [owner.key] });
      const b = await seed(s, dev, { owners: [owner.key], kind: 'snapshot' });
      const keep = await seed(s, other);
      const d = devOf(dev);
      // Control: before the erase, the dump holds the device's ID and bytes.
      let files = dump(s.dir);
      assert.ok(files.some((f) => f.path.includes(d)));
      assert.ok(contains(files, a.body) && contains(files, b.body));
      assert.equal((await call(s, 'DELETE', `/v1/blobs/${d}`, { as: mallory })).code, 'E_NO_GRANT');
      assert.equal((await call(s, 'DELETE', `/v1/blobs/${d}`, { as: owner })).status, 204);
      files = dump(s.dir);
      assert.equal(
        files.some((f) => f.path.includes(d)),
        false,
        'no file named after the device',
      );
      assert.equal(contains(files, a.body.subarray(0, 64)) || contains(files, b.body.subarray(0, 64)), false);
      assert.equal(contains(files, new TextEncoder().encode(a.t.id)), false, 'no blob ID either');
      assert.equal(contains(files, new TextEncoder().encode(d)), false, 'no mention of the device');
      // The other device keeps its blob.
      assert.ok(contains(files, keep.body));
      const l = await call(s, 'GET', `/v1/blobs/${d}`, { as: dev });
      assert.deepEqual(JSON.parse(new TextDecoder().decode(l.bytes)), { blobs: [] });
    } finally {
      await s.close();
    }
  });
});

function canonical(v: Record<string, unknown>): string {
  return `{${Object.keys(v)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${JSON.stringify(v[k])}`)
    .join(',')}}`;
}

describe('blob store: hostile routes', () => {
  it('parseQuery: a query or a ProtocolError, for any text', () => {
    assert.deepEqual(parseQuery('kind=clip&from=1&to=2'), { kind: 'clip', from: 1, to: 2 });
    for (const bad of ['kind=x', 'from=01', 'from=1&from=2', 'from=3&to=2', 'x=1', 'from=1e3', 'to=-1'])
      assert.throws(() => parseQuery(bad), ProtocolError, bad);
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 250 }),
          fc
            .array(
              fc.constantFrom('kind=', 'clip', 'event', 'from=', 'to=', '&', '=', '0', '1', '9', '%', '-'),
              {
                maxLength: 20,
              },
            )
            .map((a) => a.join('')),
        ),
        (q) => {
          try {
            parseQuery(q);
          } catch (e) {
            if (!(e instanceof ProtocolError)) throw e;
          }
        },
      ),
      { numRuns: 20_000 },
    );
  });

  it('300 random paths and methods against the running server: a registered code, never 5xx, nothing written outside', async () => {
    const s = await server();
    try {
      const dev = await party('device');
      const d = devOf(dev);
      const id = newBlobId();
      const piece = fc.constantFrom(
        '/',
        '..',
        '.',
        '%2e',
        '%2F',
        '%00',
        '?',
        '&',
        '=',
        'kind=clip',
        'from=1',
        'usage',
        'ticket',
        d,
        id,
        'hdid_',
        'A',
        '-',
        '_',
        '~',
        '%',
        '\\',
        'v1',
        'blobs',
      );
      const pathArb = fc.array(piece, { maxLength: 12 }).map((a) => `/v1/blobs/${a.join('')}`);
      const methodArb = fc.constantFrom('GET', 'PUT', 'POST', 'DELETE', 'PATCH', 'HEAD');
      await fc.assert(
        fc.asyncProperty(pathArb, methodArb, fc.boolean(), async (path, method, signed) => {
          const headers: Record<string, string> = {};
          if (signed && method !== 'PATCH' && method !== 'HEAD') {
            try {
              headers.authorization = `Hearth ${await token(method, path, { as: dev })}`;
            } catch {}
          }
          const r = await rawRequest(s.srv.port, method, path, headers);
          assert.ok(r.status >= 200 && r.status < 500, `${method} ${path}: ${r.status}`);
          if (r.status >= 400 && method !== 'HEAD') assert.ok(isErrorCode(JSON.parse(r.body).code), r.body);
        }),
        { numRuns: 300 },
      );
      const top = readdirSync(s.dir).filter(
        (n) => !/^(blobs|hearth\.db.*|server\.key|turn\.secret|vapid\.key)$/.test(n),
      );
      assert.deepEqual(top, []);
    } finally {
      await s.close();
    }
  });
});

function rawRequest(
  port: number,
  method: string,
  path: string,
  headers: Record<string, string>,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, method, path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end();
  });
}
