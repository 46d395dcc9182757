/**
 * The viewer's client of the server blob store (docs/protocol.md "Blob store"): list the blobs of
 * a device this viewer may read, stream one (still sealed: the viewer opens it with its reader
 * key), delete one it owns, erase everything of a device it owns. Every request is signed with the
 * viewer's identity signer (`store/keys.ts`, a non-extractable WebCrypto key); a failed answer
 * becomes the typed error of its registered code (`blobStoreError`).
 *
 * ```ts
 * const blobs = blobsApi({ signer: identity.signer });          // base: the page's origin
 * const { blobs: list } = await blobs.listBlobs(dev, { kind: 'event', from, to });
 * const stream = await blobs.fetchBlob(dev, list[0].id);         // ReadableStream<Uint8Array>
 * ```
 */
import {
  type BlobListing,
  blobAuthorization,
  blobBaseUrl,
  blobListQuery,
  blobPath,
  blobStoreError,
  type CryptoEnv,
  decodeBlobListing,
  ProtocolError,
  type Signer,
  type StoredBlobKind,
  systemEnv,
} from '@hearth/protocol';

/** What the blob functions need. */
export interface BlobsContext {
  /** The viewer's identity signer (`huk_…`). */
  signer: Signer;
  /** Server base URL (`https://host`, or the `wss://host/ws` of the rendezvous); default the page's origin. */
  base?: string;
  env?: CryptoEnv;
  fetch?: typeof fetch;
}

/** A listing filter: kind, and an inclusive range of hours (`floor(t / 3 600 000)`). */
export interface BlobListQuery {
  kind?: StoredBlobKind;
  from?: number;
  to?: number;
}

/** The viewer's blob functions, bound to its signer. */
export interface BlobsApi {
  /** The blobs of `dev` this viewer may read. */
  listBlobs(dev: string, q?: BlobListQuery): Promise<BlobListing>;
  /** One sealed blob, streamed. */
  fetchBlob(dev: string, id: string): Promise<ReadableStream<Uint8Array>>;
  /** Delete one blob (this viewer must be in its ticket's `owners`). */
  deleteBlob(dev: string, id: string): Promise<void>;
  /** Erase everything of `dev` (this viewer must own the device's newest ticket). */
  eraseAll(dev: string): Promise<void>;
}

/** Bind the blob functions to a signer and a server. */
export function blobsApi(ctx: BlobsContext): BlobsApi {
  const base = blobBaseUrl(ctx.base ?? globalThis.location.origin);
  const env = ctx.env ?? systemEnv;
  const f = ctx.fetch ?? globalThis.fetch.bind(globalThis);
  const send = async (method: string, path: string): Promise<Response> => {
    const authorization = await blobAuthorization(ctx.signer, 'user', method, path, undefined, env);
    const r = await f(`${base}${path}`, { method, headers: { authorization } });
    if (r.status >= 400) throw blobStoreError(r.status, new Uint8Array(await r.arrayBuffer()));
    return r;
  };
  return {
    async listBlobs(dev, q = {}) {
      const r = await send('GET', `${blobPath(dev)}${blobListQuery(q)}`);
      return decodeBlobListing(new Uint8Array(await r.arrayBuffer()));
    },
    async fetchBlob(dev, id) {
      const r = await send('GET', blobPath(dev, id));
      if (!r.body) throw new ProtocolError('E_DECODE', 'blob store: an answer without a body');
      return r.body as ReadableStream<Uint8Array>;
    },
    async deleteBlob(dev, id) {
      await (await send('DELETE', blobPath(dev, id))).arrayBuffer();
    },
    async eraseAll(dev) {
      await (await send('DELETE', blobPath(dev))).arrayBuffer();
    },
  };
}
