/**
 * Just enough ISO BMFF (MP4) reading for MSE playback of a fragmented clip: where the init segment
 * (`ftyp` + `moov`) ends, and the codec string of its tracks for `MediaSource.addSourceBuffer`
 * (`avc1.PPCCLL` from the `avcC` box, `mp4a.OO.A` from `esds`). Pure; never throws on bad input
 * (returns undefined), since the bytes are only as trusted as the blob they came from.
 */

interface Box {
  type: string;
  /** Start of the payload and end of the box, relative to the buffer. */
  body: number;
  end: number;
}

/** The boxes in `b[from, to)`; stops at the first one that does not fit (truncated or bad). */
function boxes(b: Uint8Array, from = 0, to = b.length): Box[] {
  const out: Box[] = [];
  const v = new DataView(b.buffer, b.byteOffset, b.length);
  let p = from;
  while (p + 8 <= to) {
    let size = v.getUint32(p);
    let body = p + 8;
    if (size === 1) {
      if (p + 16 > to) break;
      size = v.getUint32(p + 8) * 2 ** 32 + v.getUint32(p + 12);
      body = p + 16;
    } else if (size === 0) size = to - p;
    if (size < body - p || p + size > to) break;
    out.push({ type: String.fromCharCode(b[p + 4]!, b[p + 5]!, b[p + 6]!, b[p + 7]!), body, end: p + size });
    p += size;
  }
  return out;
}

const child = (b: Uint8Array, box: Box | undefined, type: string, skip = 0): Box | undefined =>
  box && boxes(b, box.body + skip, box.end).find((c) => c.type === type);

/**
 * The length of the init segment at the start of `b` (every top-level box up to and including
 * `moov`), or undefined while `moov` is not complete yet.
 */
export function initSegmentLength(b: Uint8Array): number | undefined {
  for (const box of boxes(b)) if (box.type === 'moov') return box.end;
  return undefined;
}

const hex2 = (n: number) => n.toString(16).padStart(2, '0');

/** The MSE codec of one sample entry (`avc1`/`avc3`, `mp4a`), or undefined. */
function entryCodec(b: Uint8Array, e: Box): string | undefined {
  if (e.type === 'avc1' || e.type === 'avc3') {
    // VisualSampleEntry: 78 bytes of fields before its child boxes.
    const c = child(b, e, 'avcC', 78);
    if (!c || c.end - c.body < 4 || b[c.body] !== 1) return undefined;
    return `${e.type}.${hex2(b[c.body + 1]!)}${hex2(b[c.body + 2]!)}${hex2(b[c.body + 3]!)}`;
  }
  if (e.type === 'mp4a') {
    // AudioSampleEntry: 28 bytes of fields; then esds (a FullBox) with the ES descriptor.
    const es = child(b, e, 'esds', 28);
    return es ? esdsCodec(b, es.body + 4, es.end) : undefined;
  }
  return undefined;
}

/** `mp4a.<objectTypeIndication hex>[.<audio object type>]` from an ES_Descriptor. */
function esdsCodec(b: Uint8Array, p: number, end: number): string | undefined {
  const desc = (tag: number): boolean => {
    if (p >= end || b[p] !== tag) return false;
    p++;
    for (let i = 0; i < 4 && p < end; i++) if (!(b[p++]! & 0x80)) break;
    return true;
  };
  if (!desc(3)) return undefined;
  const flags = b[p + 2] ?? 0;
  p += 3;
  if (flags & 0x80) p += 2;
  if (flags & 0x40) p += 1 + (b[p] ?? 0);
  if (flags & 0x20) p += 2;
  if (!desc(4) || p >= end) return undefined;
  const oti = b[p]!;
  p += 13;
  if (oti === 0x40 && desc(5) && p < end) {
    let aot = b[p]! >> 3;
    if (aot === 31 && p + 1 < end) aot = 32 + (((b[p]! & 7) << 3) | (b[p + 1]! >> 5));
    return `mp4a.40.${aot}`;
  }
  return `mp4a.${hex2(oti)}`;
}

/**
 * The codec string of every track in the init segment (`avc1.42E01E` style, upper-case hex as the
 * spec writes it is not required: MSE compares case-insensitively), comma-joined, or undefined
 * when a track's codec cannot be read.
 */
export function codecsOfInit(b: Uint8Array): string | undefined {
  const moov = boxes(b).find((x) => x.type === 'moov');
  if (!moov) return undefined;
  const codecs: string[] = [];
  for (const trak of boxes(b, moov.body, moov.end).filter((x) => x.type === 'trak')) {
    const stbl = child(b, child(b, child(b, trak, 'mdia'), 'minf'), 'stbl');
    const stsd = child(b, stbl, 'stsd');
    // stsd is a FullBox (4 bytes) with an entry count (4 bytes) before its entries.
    const entry = stsd && boxes(b, stsd.body + 8, stsd.end)[0];
    const c = entry && entryCodec(b, entry);
    if (!c) return undefined;
    codecs.push(c);
  }
  return codecs.length ? codecs.join(',') : undefined;
}

/** `video/mp4; codecs="…"` for an init segment, or undefined. */
export function mimeOfInit(b: Uint8Array): string | undefined {
  const c = codecsOfInit(b);
  return c && `video/mp4; codecs="${c}"`;
}
