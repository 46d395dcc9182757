/**
 * The newest picture of each camera of a device, for the home screen's tiles: the device's `event`
 * blobs of the last day, newest hour first, opened until every camera has one; its full snapshot
 * (`snap`) when it has one, else the record's thumbnail. Only verified blobs are used; a camera
 * whose blobs fail to open simply has no picture (the timeline shows the failures).
 */
import { decodeEventRecord } from '../core/event-record.js';
import { HOUR_MS } from '../core/timeline.js';
import { type BlobContext, openSmallBlob } from './open.js';

/** At most this many records are opened per device. */
const MAX_OPEN = 48;

export async function latestPictures(
  ctx: BlobContext,
  cameras: readonly string[],
  now: number,
  fromB64: (s: string) => Uint8Array,
): Promise<Map<string, Uint8Array>> {
  const out = new Map<string, Uint8Array>();
  const want = new Set(cameras);
  const to = Math.floor(now / HOUR_MS);
  const listed = await ctx.api.listBlobs(ctx.dev, { kind: 'event', from: to - 24, to });
  const newest = new Map<string, { t: number; snap?: string; thumb: string }>();
  for (const e of [...listed].sort((a, b) => b.hr - a.hr).slice(0, MAX_OPEN)) {
    // Stop once every camera has a record from an hour later than any still unopened.
    if (newest.size === want.size && [...newest.values()].every((r) => Math.floor(r.t / HOUR_MS) > e.hr))
      break;
    try {
      const { plaintext, meta } = await openSmallBlob(ctx, e.id, 'event');
      const rec = decodeEventRecord(plaintext);
      if (rec.cam !== meta.cam || !want.has(rec.cam)) continue;
      const cur = newest.get(rec.cam);
      if (!cur || rec.t > cur.t)
        newest.set(rec.cam, { t: rec.t, thumb: rec.thumb, ...(rec.snap ? { snap: rec.snap } : {}) });
    } catch {
      // not shown here; the timeline lists it
    }
  }
  for (const [cam, r] of newest) {
    let pic = fromB64(r.thumb);
    if (r.snap)
      try {
        pic = (await openSmallBlob(ctx, r.snap, 'snapshot', cam)).plaintext;
      } catch {
        // keep the thumbnail
      }
    out.set(cam, pic);
  }
  return out;
}
