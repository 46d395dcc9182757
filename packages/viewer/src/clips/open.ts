/**
 * Opening sealed blobs in the viewer: the context (store, device, pinned key, our reader key), a
 * whole small blob (event records, snapshots) read under a size limit and checked in full before
 * any byte is used, and the error text the screens show. Clips stream instead (player.ts).
 */
import {
  type ClipMeta,
  type ClipReader,
  concat,
  HearthError,
  openBlob,
  ProtocolError,
  VerificationError,
  viewerAction,
} from '@hearth/protocol';
import type { BlobApi } from './blob-api.js';

/** Everything needed to fetch and open one device's blobs. */
export interface BlobContext {
  api: BlobApi;
  /** Device ID (`hdid_…`). */
  dev: string;
  /** The device key pinned at pairing: every header must be signed by it. */
  pinnedDeviceKey: Uint8Array;
  /** This browser's reader key. */
  reader: ClipReader;
}

/** What a blob's device said it is: camera and times (the sealed metadata box `m`). */
export type BlobMeta = ClipMeta;

/** Largest small blob (an event record or a snapshot) read whole. */
export const MAX_SMALL_BLOB_BYTES = 2 * 1024 * 1024;

/** Read a stream to its end, refusing past `max` bytes (E_TOO_LARGE) before buffering more. */
export async function readAll(stream: ReadableStream<Uint8Array>, max: number): Promise<Uint8Array> {
  const r = stream.getReader();
  const parts: Uint8Array[] = [];
  let n = 0;
  for (;;) {
    const { done, value } = await r.read();
    if (done) break;
    n += value.length;
    if (n > max) {
      void r.cancel();
      throw new ProtocolError('E_TOO_LARGE', `blob larger than ${max} bytes`);
    }
    parts.push(value);
  }
  return concat(...parts);
}

/** The kinds a blob may have for a use. */
const KINDS: Record<string, readonly string[]> = {
  event: ['event'],
  snapshot: ['snapshot'],
  clip: ['clip'],
};

/**
 * Fetch and open a small blob: the header verified against the pinned key and device, its kind
 * the one expected (E_BAD_BINDING), every chunk and the digest checked, before the plaintext is
 * returned.
 */
export async function openSmallBlob(
  ctx: BlobContext,
  id: string,
  kind: 'event' | 'snapshot',
  camera?: string,
): Promise<{ plaintext: Uint8Array; meta: BlobMeta }> {
  const bytes = await readAll(await ctx.api.fetchBlob(ctx.dev, id), MAX_SMALL_BLOB_BYTES);
  const opened = await openBlob(bytes, {
    pinnedDeviceKey: ctx.pinnedDeviceKey,
    deviceId: ctx.dev,
    ...(camera === undefined ? {} : { camera }),
    reader: ctx.reader,
  });
  if (!KINDS[kind]!.includes(opened.header.kind) || opened.header.id !== id)
    throw new VerificationError('E_BAD_BINDING', `blob is not the ${kind} it was listed as`);
  return { plaintext: opened.plaintext, meta: opened.meta };
}

/** A failure as the screens show it: its code, whether it is a possible attack, and a sentence. */
export function describeFailure(e: unknown): { code: string; attack: boolean; message: string } {
  const code = e instanceof HearthError ? e.code : 'E_NO_SERVER';
  const action = viewerAction(code);
  const message =
    action === 'attack'
      ? `Possible attack: this blob failed a check (${code}). It was not shown.`
      : action === 'access'
        ? `Not shared with this browser (${code}).`
        : code === 'E_CLIP_HEADER' || code === 'E_SCHEMA' || code === 'E_DECODE'
          ? `Damaged or forged blob (${code}). It was not shown.`
          : `Could not load (${code}).`;
  return { code, attack: action === 'attack', message };
}
