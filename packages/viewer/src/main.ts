/**
 * Browser entry point (bundled to dist/app.js). Order matters: `csp.js` configures libraries for a
 * strict CSP before anything else runs.
 */
import './csp.js';
import { systemEnv } from '@hearth/protocol';
import type { BlobApi } from './clips/blob-api.js';
import { rendezvousUrl } from './core/links.js';
import { blobsApi } from './net/blobs.js';
import { RendezvousClient } from './net/rendezvous.js';
import { Db } from './store/idb.js';
import { loadOrCreateViewerKey } from './store/keys.js';
import { loadOrCreateReaderKey } from './store/reader-key.js';
import { App, type HearthHook } from './ui/app.js';
import { h, replace } from './ui/dom.js';

declare global {
  interface Window {
    __hearth?: HearthHook;
  }
}

async function boot(): Promise<void> {
  const root = document.getElementById('app');
  if (!root) return;
  if (!window.isSecureContext || !globalThis.crypto?.subtle || !('indexedDB' in globalThis)) {
    replace(
      root,
      h(
        'p',
        { class: 'fatal' },
        'Hearth needs a secure (https) page and a browser with WebCrypto and IndexedDB.',
      ),
    );
    return;
  }
  let db: Db;
  let me: Awaited<ReturnType<typeof loadOrCreateViewerKey>>;
  try {
    db = await Db.open();
    me = await loadOrCreateViewerKey(db);
  } catch (err) {
    const ed =
      (err as Error).name === 'NotSupportedError'
        ? ' This browser has no Ed25519 in WebCrypto; update it.'
        : '';
    replace(root, h('p', { class: 'fatal' }, `Cannot create or load this browser's key.${ed}`));
    console.error(err);
    return;
  }
  const rv = new RendezvousClient({ url: rendezvousUrl(location.origin), signer: me.signer, env: systemEnv });
  // The reader key for sealed clips (undefined where WebCrypto has no X25519: no clips there).
  const reader = await loadOrCreateReaderKey(db, me).catch((e) => {
    console.error(e);
    return undefined;
  });
  // The blob store of this origin's server, every request signed with this browser's key.
  const store = blobsApi({ signer: me.signer });
  const api: BlobApi = {
    listBlobs: async (dev, q) => (await store.listBlobs(dev, q)).blobs,
    fetchBlob: (dev, id) => store.fetchBlob(dev, id),
    deleteBlob: (dev, id) => store.deleteBlob(dev, id),
  };
  const app = new App(root, db, me, rv, systemEnv, { api, ...(reader ? { reader } : {}) });
  window.__hearth = app.hook();
  await app.start();
  document.documentElement.dataset.ready = 'true';
  if ('serviceWorker' in navigator) {
    navigator.serviceWorker.register('/sw.js', { scope: '/' }).catch(() => undefined);
  }
}

void boot();
