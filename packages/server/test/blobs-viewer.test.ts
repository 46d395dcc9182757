/** The viewer's blob functions (viewer `net/blobs.ts`) against the real server on 127.0.0.1. */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import {
  AccessError,
  blobAuthorization,
  deviceIdFromKey,
  encodeBlobTicketHeader,
  encodeId,
  newBlobId,
  ProtocolError,
  signBlobTicket,
  systemEnv,
  WebCryptoSigner,
} from '@hearth/protocol';
import { blobsApi } from '../../viewer/src/net/blobs.js';
import { type HearthServer, startServer } from '../src/index.js';
import { tempDir } from './helpers.js';

const sha = (b: Uint8Array) => new Uint8Array(createHash('sha256').update(b).digest());

describe('viewer blobs', () => {
  const tmp = tempDir();
  let srv: HearthServer;
  let device: WebCryptoSigner;
  let viewer: WebCryptoSigner;
  let stranger: WebCryptoSigner;
  let dev: string;
  before(async () => {
    srv = await startServer({
      dataDir: tmp.dir,
      host: '127.0.0.1',
      port: 0,
      tls: { mode: 'off' },
      relay: { enabled: false },
      serveViewer: false,
    });
    device = await WebCryptoSigner.generate();
    viewer = await WebCryptoSigner.generate();
    stranger = await WebCryptoSigner.generate();
    dev = deviceIdFromKey(device.publicKey);
  });
  after(async () => {
    await srv.close();
    tmp.rm();
  });

  async function upload(body: Uint8Array, readers: string[], owners: string[]) {
    const t = await signBlobTicket(device, {
      id: newBlobId(),
      kind: 'event',
      hr: 7,
      size: body.length,
      sha256: sha(body),
      readers,
      owners,
      seq: 1,
    });
    const path = `/v1/blobs/${dev}/${t.id}`;
    const r = await fetch(`${srv.url}${path}`, {
      method: 'PUT',
      body: new Uint8Array(body),
      headers: {
        authorization: await blobAuthorization(device, 'device', 'PUT', path, body, systemEnv),
        'hearth-ticket': encodeBlobTicketHeader(t),
      },
    });
    assert.equal(r.status, 201);
    return t;
  }

  it('lists, streams, deletes and erases with the viewer identity; a stranger gets typed refusals', async () => {
    const me = encodeId('userKey', viewer.publicKey);
    const body = new Uint8Array(randomBytes(300_000));
    const t = await upload(body, [me], [me]);
    const api = blobsApi({ signer: viewer, base: `${srv.url.replace(/^http/, 'ws')}/ws` });
    assert.deepEqual(await api.listBlobs(dev, { kind: 'event', from: 7, to: 7 }), {
      blobs: [{ id: t.id, kind: 'event', hr: 7, size: body.length }],
    });
    const chunks: Uint8Array[] = [];
    const reader = (await api.fetchBlob(dev, t.id)).getReader();
    for (let r = await reader.read(); !r.done; r = await reader.read()) chunks.push(r.value);
    assert.deepEqual(new Uint8Array(Buffer.concat(chunks)), body);

    const other = blobsApi({ signer: stranger, base: srv.url });
    assert.deepEqual(await other.listBlobs(dev), { blobs: [] });
    await assert.rejects(
      other.fetchBlob(dev, t.id),
      (e: unknown) => e instanceof AccessError && e.code === 'E_NO_GRANT',
    );
    await assert.rejects(
      other.deleteBlob(dev, t.id),
      (e: unknown) => e instanceof AccessError && e.code === 'E_NO_GRANT',
    );
    await assert.rejects(
      other.eraseAll(dev),
      (e: unknown) => e instanceof AccessError && e.code === 'E_NO_GRANT',
    );
    await assert.rejects(
      api.fetchBlob(dev, '../../etc/passwd'),
      (e: unknown) => e instanceof ProtocolError && e.code === 'E_BAD_ID',
    );

    await api.deleteBlob(dev, t.id);
    assert.deepEqual(await api.listBlobs(dev), { blobs: [] });
    await upload(body, [me], [me]);
    await api.eraseAll(dev);
    assert.deepEqual(await api.listBlobs(dev), { blobs: [] });
  });
});
