/** How a device cuts a fragmented MP4 into the chunks of a sealed clip (pure; no I/O). */
import { CLIP_CHUNK_BYTES } from './stream.js';

/**
 * Cut an fMP4 into chunks: the boxes before the first `moof` (ftyp, moov) as one, then each
 * `moof`+`mdat` fragment as one, each at most `max` bytes (longer ones split). Bytes that do not
 * parse as MP4 boxes are cut every `max` bytes.
 */
export function fragmentChunks(mp4: Uint8Array, max = CLIP_CHUNK_BYTES): Uint8Array[] {
  const bounds: number[] = [0];
  const dv = new DataView(mp4.buffer, mp4.byteOffset, mp4.byteLength);
  let off = 0;
  let ok = true;
  while (off < mp4.length) {
    if (off + 8 > mp4.length) {
      ok = false;
      break;
    }
    let size = dv.getUint32(off);
    const type = String.fromCharCode(...mp4.subarray(off + 4, off + 8));
    if (size === 1) {
      if (off + 16 > mp4.length) {
        ok = false;
        break;
      }
      size = Number(dv.getBigUint64(off + 8));
    } else if (size === 0) size = mp4.length - off;
    if (size < 8 || off + size > mp4.length) {
      ok = false;
      break;
    }
    if (type === 'moof' && off > 0 && bounds.at(-1) !== off) bounds.push(off);
    off += size;
  }
  if (!ok) bounds.splice(1);
  bounds.push(mp4.length);
  const out: Uint8Array[] = [];
  for (let i = 0; i + 1 < bounds.length; i++) {
    const a = bounds[i] as number;
    const b = bounds[i + 1] as number;
    for (let p = a; p < b; p += max) out.push(mp4.subarray(p, Math.min(b, p + max)));
  }
  return out.length ? out : [new Uint8Array(0)];
}
