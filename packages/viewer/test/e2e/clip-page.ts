/**
 * The page of the Chromium clip test (clips.test.ts), bundled by the test with esbuild: the real
 * viewer modules (identity and reader key in IndexedDB, the timeline screen, the streaming player)
 * over a plain-fetch BlobApi to the test's loopback fixture. The fixture does not check request
 * signatures: signing is net/blobs.ts's job, not under test here.
 */
import '../../src/csp.js';
import { decodeId } from '@hearth/protocol';
import type { BlobApi } from '../../src/clips/blob-api.js';
import { Db } from '../../src/store/idb.js';
import { loadOrCreateViewerKey } from '../../src/store/keys.js';
import { loadOrCreateReaderKey } from '../../src/store/reader-key.js';
import { TimelineScreen } from '../../src/ui/timeline-screen.js';

const api: BlobApi = {
  async listBlobs(dev, q) {
    const r = await fetch(`/v1/blobs/${dev}?kind=${q.kind ?? ''}&from=${q.from}&to=${q.to}`);
    if (!r.ok) throw new Error(`list: ${r.status}`);
    return ((await r.json()) as { blobs: never[] }).blobs;
  },
  async fetchBlob(dev, id) {
    const r = await fetch(`/v1/blobs/${dev}/${id}`);
    if (!r.ok || !r.body) throw new Error(`fetch: ${r.status}`);
    return r.body;
  },
  async deleteBlob(dev, id) {
    const r = await fetch(`/v1/blobs/${dev}/${id}`, { method: 'DELETE' });
    if (r.status !== 204) throw new Error(`delete: ${r.status}`);
  },
};

declare global {
  interface Window {
    __clipTest?: {
      rk: string;
      extractable: boolean;
      privateExtractable: boolean;
      show(dev: string, deviceKey: string, camera: string, day: string): void;
    };
  }
}

async function boot(): Promise<void> {
  const db = await Db.open();
  const me = await loadOrCreateViewerKey(db);
  const reader = await loadOrCreateReaderKey(db, me);
  if (!reader) throw new Error('no X25519 in this browser');
  const root = document.getElementById('app')!;
  window.__clipTest = {
    rk: reader.rk,
    extractable: reader.extractable,
    privateExtractable: reader.reader.x25519.privateKey.extractable,
    show(dev, deviceKey, camera, day) {
      new TimelineScreen(root, dev, camera, day, {
        ctx: { api, dev, pinnedDeviceKey: decodeId('deviceKey', deviceKey), reader: reader.reader },
        label: 'Test device',
      });
    },
  };
}

void boot();
