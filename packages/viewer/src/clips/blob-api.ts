/**
 * What the timeline needs of the blob store (docs/events-contract.md §4). The HTTP client that
 * signs the requests is `net/blobs.ts` (another part of issue 9); the screens take any object with
 * this shape, so they are tested against a loopback fixture and wired to the real client in main.ts.
 */

/** One blob the store lists (`GET /v1/blobs/<dev>?kind=…&from=<hr>&to=<hr>`). */
export interface BlobEntry {
  id: string;
  kind: string;
  /** The coarse hour, `floor(t0 / 3 600 000)`: the only time the server sees. */
  hr: number;
  size: number;
}

export interface BlobQuery {
  kind?: 'clip' | 'snapshot' | 'event';
  /** Hours, inclusive. */
  from: number;
  to: number;
}

/**
 * The store, as a viewer reaches it. Errors are thrown as HearthError with a registered code
 * (E_NO_GRANT, E_NOT_FOUND, E_RATE_LIMITED, …) where the client knows one.
 */
export interface BlobApi {
  listBlobs(dev: string, q: BlobQuery): Promise<BlobEntry[]>;
  /** The sealed bytes, streamed as they arrive. */
  fetchBlob(dev: string, id: string): Promise<ReadableStream<Uint8Array>>;
  deleteBlob(dev: string, id: string): Promise<void>;
}
