/** The device's BlobClient against the real server on 127.0.0.1 (real keys, real files). */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CertificatePinError } from '@hearth/node';
import {
  AccessError,
  type BlobTicketInput,
  blobBaseUrl,
  LimitError,
  newBlobId,
  signBlobTicket,
  VerificationError,
  WebCryptoSigner,
} from '@hearth/protocol';
import { type HearthServer, startServer } from '@hearth/server';
import { BlobClient } from '../src/events/blob-client.js';

const sha = (b: Uint8Array) => new Uint8Array(createHash('sha256').update(b).digest());

describe('BlobClient', () => {
  let dir: string;
  let srv: HearthServer;
  let signer: WebCryptoSigner;
  let client: BlobClient;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hearth-blob-client-'));
    srv = await startServer({
      dataDir: dir,
      host: '127.0.0.1',
      port: 0,
      tls: { mode: 'off' },
      relay: { enabled: false },
      serveViewer: false,
      blobs: { quotaBytes: 50_000 },
    });
    signer = await WebCryptoSigner.generate();
    // The agent knows its server as ws(s)://host/ws or http(s)://host: both work.
    client = new BlobClient({ serverUrl: `${srv.url.replace(/^http/, 'ws')}/ws`, signer });
  });
  after(async () => {
    await srv.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const ticketFor = (body: Uint8Array, over: Partial<BlobTicketInput> = {}) =>
    signBlobTicket(signer, {
      id: newBlobId(),
      kind: 'clip',
      hr: 100,
      size: body.length,
      sha256: sha(body),
      readers: [],
      owners: [],
      seq: 1,
      ...over,
    });

  it('base URL from the server URL', () => {
    assert.equal(blobBaseUrl('wss://cam.example:8443/ws'), 'https://cam.example:8443');
    assert.equal(blobBaseUrl('ws://127.0.0.1:1/ws'), 'http://127.0.0.1:1');
    assert.equal(blobBaseUrl('https://h.example/'), 'https://h.example');
    assert.equal(client.base, srv.url);
  });

  it('put, list, usage, re-ticket, delete, eraseAll', async () => {
    const a = new Uint8Array(randomBytes(10_000));
    const ta = await ticketFor(a, { kind: 'event', hr: 101 });
    assert.equal(await client.put(ta.id, a, ta), 'created');
    assert.equal(await client.put(ta.id, a, ta), 'exists');
    const b = new Uint8Array(randomBytes(5_000));
    const tb = await ticketFor(b);
    await client.put(tb.id, b, tb);
    assert.deepEqual(await client.list({ kind: 'event', from: 101, to: 101 }), [
      { id: ta.id, kind: 'event', hr: 101, size: a.length },
    ]);
    assert.equal((await client.list()).length, 2);
    assert.deepEqual(await client.usage(), { bytes: 15_000, count: 2, quotaBytes: 50_000 });
    await client.ticket(await ticketFor(b, { id: tb.id, seq: 2 }));
    await assert.rejects(
      client.ticket(await ticketFor(b, { id: tb.id, seq: 2 })),
      (e: unknown) => e instanceof AccessError && e.code === 'E_STALE_TICKET',
    );
    await client.delete(tb.id);
    assert.equal((await client.list()).length, 1);
    await client.eraseAll();
    assert.deepEqual(await client.usage(), { bytes: 0, count: 0, quotaBytes: 50_000 });
  });

  it('failures are the typed errors of their registered codes', async () => {
    const big = new Uint8Array(randomBytes(60_000));
    const t = await ticketFor(big);
    await assert.rejects(
      client.put(t.id, big, t),
      (e: unknown) => e instanceof LimitError && e.code === 'E_QUOTA',
    );
    const body = new Uint8Array(randomBytes(100));
    const t2 = await ticketFor(body);
    const evil = new Uint8Array(body);
    evil[0] = evil[0]! ^ 1;
    // The client signs the body it sends; its hash is not the ticket's.
    await assert.rejects(
      client.put(t2.id, evil, t2),
      (e: unknown) => e instanceof VerificationError && e.code === 'E_BAD_BINDING',
    );
    await assert.rejects(
      client.delete(newBlobId()),
      (e: unknown) => (e as { code?: string }).code === 'E_NOT_FOUND',
    );
  });
});

describe('BlobClient to a server with a pinned self-signed certificate', () => {
  let dir: string;
  let srv: HearthServer;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hearth-blob-client-tls-'));
    srv = await startServer({
      dataDir: dir,
      host: '127.0.0.1',
      port: 0,
      tls: { mode: 'self-signed' },
      relay: { enabled: false },
      serveViewer: false,
    });
  });
  after(async () => {
    await srv.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('works with the right pin; with another pin nothing is sent (the blob survives an erase)', async () => {
    assert.ok(srv.certSha256);
    const signer = await WebCryptoSigner.generate();
    const url = srv.url.replace('localhost', '127.0.0.1');
    const good = new BlobClient({ serverUrl: url, signer, pinnedCertSha256: srv.certSha256! });
    const body = new Uint8Array(randomBytes(70_000));
    const t = await signBlobTicket(signer, {
      id: newBlobId(),
      kind: 'snapshot',
      hr: 3,
      size: body.length,
      sha256: sha(body),
      readers: [],
      owners: [],
      seq: 1,
    });
    assert.equal(await good.put(t.id, body, t), 'created');
    assert.equal((await good.usage()).count, 1);
    const wrong = new BlobClient({ serverUrl: url, signer, pinnedCertSha256: 'ab'.repeat(32) });
    await assert.rejects(wrong.eraseAll(), (e: unknown) => e instanceof CertificatePinError);
    assert.equal((await good.usage()).count, 1);
    await good.delete(t.id);
    assert.equal((await good.usage()).count, 0);
    // Control: without a pin the self-signed certificate is refused by CA validation.
    await assert.rejects(new BlobClient({ serverUrl: url, signer }).usage());
  });
});
