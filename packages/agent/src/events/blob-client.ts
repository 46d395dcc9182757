/**
 * The device's client of the server blob store (docs/protocol.md "Blob store"): uploads sealed
 * blobs with their tickets, re-issues tickets, lists, deletes, erases everything, reads its usage.
 * Every request is signed with the device signer (protocol `blobAuthorization`); a failed answer
 * becomes the typed error of its registered code (`blobStoreError`: e.g. LimitError `E_QUOTA`,
 * AccessError `E_STALE_TICKET`, VerificationError `E_BLOB_DIGEST`).
 *
 * Node's `fetch` by default; with `pinnedCertSha256` (the agent's `--pin-cert`, a self-signed
 * server) `pinnedFetch` of @hearth/node, which checks the pin before sending anything.
 */
import { type MinimalFetch, pinnedFetch } from '@hearth/node';
import {
  type BlobListing,
  type BlobTicket,
  type BlobUsage,
  blobAuthorization,
  blobBaseUrl,
  blobListQuery,
  blobPath,
  blobStoreError,
  type CryptoEnv,
  decodeBlobListing,
  decodeBlobUsage,
  deviceIdFromKey,
  encodeBlobTicket,
  encodeBlobTicketHeader,
  errorFromCode,
  HearthError,
  type Signer,
  type StoredBlobKind,
  systemEnv,
  utf8,
  VerificationError,
} from '@hearth/protocol';

/** Options of {@link BlobClient}. */
export interface BlobClientOptions {
  /** The agent's server URL (`http(s)://host` or `ws(s)://host/ws`). */
  serverUrl: string;
  /** The device signer. */
  signer: Signer;
  env?: CryptoEnv;
  /** SHA-256 of the server's self-signed certificate (as for the rendezvous WebSocket). */
  pinnedCertSha256?: string;
  fetch?: MinimalFetch;
}

/** What `put` did: stored it (201), or the server already had these bytes (200). */
export type BlobPutResult = 'created' | 'exists';

/** The device's blob-store client. */
export class BlobClient {
  readonly base: string;
  readonly dev: string;
  private readonly env: CryptoEnv;
  private readonly fetch: MinimalFetch;

  constructor(private readonly o: BlobClientOptions) {
    this.base = blobBaseUrl(o.serverUrl);
    this.dev = deviceIdFromKey(o.signer.publicKey);
    this.env = o.env ?? systemEnv;
    this.fetch =
      o.fetch ?? (o.pinnedCertSha256 !== undefined ? pinnedFetch(o.pinnedCertSha256) : (u, i) => fetch(u, i));
  }

  private async send(
    method: string,
    path: string,
    body?: Uint8Array,
    headers: Record<string, string> = {},
  ): Promise<Response> {
    const authorization = await blobAuthorization(this.o.signer, 'device', method, path, body, this.env);
    let r: Response;
    try {
      r = await this.fetch(`${this.base}${path}`, {
        method,
        headers: { ...headers, authorization },
        ...(body ? { body: new Uint8Array(body) } : {}),
      });
    } catch (e) {
      // A pin mismatch and the like keep their own code; a connection that failed is E_NO_SERVER.
      if (e instanceof HearthError) throw e;
      throw errorFromCode(
        'E_NO_SERVER',
        `blob store at ${this.base} cannot be reached (${(e as Error).message})`,
      );
    }
    if (r.status >= 400) throw blobStoreError(r.status, new Uint8Array(await r.arrayBuffer()));
    return r;
  }

  /** Upload a sealed blob under `id` with its ticket (which must be this device's, for `id`). */
  async put(id: string, bytes: Uint8Array, ticket: BlobTicket): Promise<BlobPutResult> {
    if (ticket.id !== id || ticket.dev !== this.dev)
      throw new VerificationError('E_BAD_BINDING', 'blob ticket: for another blob or device');
    const r = await this.send('PUT', blobPath(this.dev, id), bytes, {
      'hearth-ticket': encodeBlobTicketHeader(ticket),
      'content-type': 'application/octet-stream',
    });
    await r.arrayBuffer();
    return r.status === 201 ? 'created' : 'exists';
  }

  /** Re-issue a stored blob's ticket (higher `seq`, e.g. after a revocation). */
  async ticket(ticket: BlobTicket): Promise<void> {
    const r = await this.send(
      'POST',
      blobPath(this.dev, ticket.id, 'ticket'),
      utf8(encodeBlobTicket(ticket)),
      {
        'content-type': 'application/json',
      },
    );
    await r.arrayBuffer();
  }

  /** Delete one blob (E_NOT_FOUND when the server has none of this ID). */
  async delete(id: string): Promise<void> {
    await (await this.send('DELETE', blobPath(this.dev, id))).arrayBuffer();
  }

  /** The device's blobs, by kind and hour range (inclusive). */
  async list(q: { kind?: StoredBlobKind; from?: number; to?: number } = {}): Promise<BlobListing['blobs']> {
    const r = await this.send('GET', `${blobPath(this.dev)}${blobListQuery(q)}`);
    return decodeBlobListing(new Uint8Array(await r.arrayBuffer())).blobs;
  }

  /** Erase every blob of the device on the server (S8). */
  async eraseAll(): Promise<void> {
    await (await this.send('DELETE', blobPath(this.dev))).arrayBuffer();
  }

  /** Bytes and count stored, and the byte quota. */
  async usage(): Promise<BlobUsage> {
    const r = await this.send('GET', `${blobPath(this.dev)}/usage`);
    return decodeBlobUsage(new Uint8Array(await r.arrayBuffer()));
  }
}
