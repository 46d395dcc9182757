/**
 * The outbox's real sink: each sealed blob goes to the server's blob store with a ticket the
 * device signs at upload time (docs/protocol.md "Blob store"). The ticket's `readers` are the user
 * keys the blob is sealed to; its `owners` are the ACL's owner keys now (who may delete it).
 */
import { blobHour, type Signer, signBlobTicket } from '@hearth/protocol';
import type { BlobClient } from './blob-client.js';
import type { BlobSink, OutboxMeta } from './outbox.js';

/** Options of {@link blobClientSink}. */
export interface BlobClientSinkOptions {
  client: BlobClient;
  device: Signer;
  /** The owners' user keys (`huk_…`) now. */
  owners: () => readonly string[];
  /** Ticket sequence numbers: increasing (ms since the epoch by default). */
  now?: () => number;
}

function fromHex(hex: string): Uint8Array {
  if (!/^[0-9a-f]{64}$/.test(hex)) throw new RangeError('outbox meta: sha256 must be 64 hex digits');
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) out[i] = Number.parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** A {@link BlobSink} that uploads through `client`, signing each blob's ticket. */
export function blobClientSink(o: BlobClientSinkOptions): BlobSink {
  const now = o.now ?? Date.now;
  return {
    async put(id: string, bytes: Uint8Array, meta: OutboxMeta): Promise<void> {
      const ticket = await signBlobTicket(o.device, {
        id,
        kind: meta.kind,
        hr: meta.hr ?? blobHour(meta.t),
        size: bytes.length,
        sha256: fromHex(meta.sha256),
        readers: [...(meta.readers ?? [])].sort(),
        owners: [...new Set(o.owners())].sort(),
        seq: now(),
      });
      await o.client.put(id, bytes, ticket);
    },
    async delete(id: string): Promise<void> {
      try {
        await o.client.delete(id);
      } catch (e) {
        // Already gone on the server (deleted by an owner, or erased): nothing left to do.
        if ((e as { code?: string }).code !== 'E_NOT_FOUND') throw e;
      }
    },
  };
}
