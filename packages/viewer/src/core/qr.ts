/**
 * A small QR code encoder (ISO/IEC 18004), byte mode only, error-correction level L or M, versions
 * 1 to 40, the mask chosen by the standard's penalty rules. Enough for an invite link (at most a
 * few hundred bytes); pure, no DOM: the invite screen draws the matrix on a canvas.
 *
 * Structure after Project Nayuki's public-domain-style reference design (tables from the standard):
 * data bits → pad → split into blocks → Reed–Solomon over GF(256) (polynomial 0x11d) → interleave
 * → function patterns → zigzag placement → best of the 8 masks → format (and version) bits.
 */

/** Error-correction level. */
export type QrEcc = 'L' | 'M';

/** A QR code: `size`×`size` modules, `get(x, y)` true for dark. */
export interface QrCode {
  readonly version: number;
  readonly size: number;
  readonly mask: number;
  readonly ecc: QrEcc;
  get(x: number, y: number): boolean;
}

// Index 0 unused. From the standard's table 9 (error correction characteristics).
const ECC_PER_BLOCK: Record<QrEcc, number[]> = {
  L: [
    -1, 7, 10, 15, 20, 26, 18, 20, 24, 30, 18, 20, 24, 26, 30, 22, 24, 28, 30, 28, 28, 28, 28, 30, 30, 26, 28,
    30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30,
  ],
  M: [
    -1, 10, 16, 26, 18, 24, 16, 18, 22, 22, 26, 30, 22, 22, 24, 24, 28, 28, 26, 26, 26, 26, 28, 28, 28, 28,
    28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28,
  ],
};
const NUM_BLOCKS: Record<QrEcc, number[]> = {
  L: [
    -1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 4, 4, 4, 4, 4, 6, 6, 6, 6, 7, 8, 8, 9, 9, 10, 12, 12, 12, 13, 14, 15, 16,
    17, 18, 19, 19, 20, 21, 22, 24, 25,
  ],
  M: [
    -1, 1, 1, 1, 2, 2, 4, 4, 4, 5, 5, 5, 8, 9, 9, 10, 10, 11, 13, 14, 16, 17, 17, 18, 20, 21, 23, 25, 26, 28,
    29, 31, 33, 35, 37, 38, 40, 43, 45, 47, 49,
  ],
};
/** Format-information bits of each level (L = 01, M = 00). */
const ECC_FORMAT_BITS: Record<QrEcc, number> = { L: 1, M: 0 };

/** Largest byte payload of a version at a level. */
export function qrCapacity(version: number, ecc: QrEcc): number {
  const dataBits = dataCodewords(version, ecc) * 8;
  return Math.floor((dataBits - 4 - (version < 10 ? 8 : 16)) / 8);
}

/** Encode `data` (bytes, or text as UTF-8) at the smallest version that fits. Throws RangeError if none does. */
export function encodeQr(data: Uint8Array | string, ecc: QrEcc = 'M', mask?: number): QrCode {
  const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data;
  let version = 1;
  while (version <= 40 && qrCapacity(version, ecc) < bytes.length) version++;
  if (version > 40) throw new RangeError('data too long for a QR code');
  return encodeAt(bytes, version, ecc, mask);
}

function rawModules(ver: number): number {
  let r = (16 * ver + 128) * ver + 64;
  if (ver >= 2) {
    const n = Math.floor(ver / 7) + 2;
    r -= (25 * n - 10) * n - 55;
    if (ver >= 7) r -= 36;
  }
  return r;
}

function dataCodewords(ver: number, ecc: QrEcc): number {
  return Math.floor(rawModules(ver) / 8) - ECC_PER_BLOCK[ecc][ver]! * NUM_BLOCKS[ecc][ver]!;
}

function alignmentPositions(ver: number): number[] {
  if (ver === 1) return [];
  const n = Math.floor(ver / 7) + 2;
  const step = ver === 32 ? 26 : Math.ceil((ver * 4 + 4) / (n * 2 - 2)) * 2;
  const out = [6];
  for (let pos = ver * 4 + 10; out.length < n; pos -= step) out.splice(1, 0, pos);
  return out;
}

// ------------------------------------------------------------------ Reed–Solomon

function gfMul(x: number, y: number): number {
  let z = 0;
  for (let i = 7; i >= 0; i--) {
    z = (z << 1) ^ ((z >>> 7) * 0x11d);
    z ^= ((y >>> i) & 1) * x;
  }
  return z & 0xff;
}

function rsDivisor(degree: number): number[] {
  const r = new Array<number>(degree).fill(0);
  r[degree - 1] = 1;
  let root = 1;
  for (let i = 0; i < degree; i++) {
    for (let j = 0; j < r.length; j++) {
      r[j] = gfMul(r[j]!, root);
      if (j + 1 < r.length) r[j] = r[j]! ^ r[j + 1]!;
    }
    root = gfMul(root, 0x02);
  }
  return r;
}

function rsRemainder(data: readonly number[], divisor: readonly number[]): number[] {
  const r = new Array<number>(divisor.length).fill(0);
  for (const b of data) {
    const factor = b ^ r.shift()!;
    r.push(0);
    for (let i = 0; i < divisor.length; i++) r[i] = r[i]! ^ gfMul(divisor[i]!, factor);
  }
  return r;
}

// ------------------------------------------------------------------ codewords

function codewords(bytes: Uint8Array, ver: number, ecc: QrEcc): number[] {
  const bits: number[] = [];
  const put = (val: number, len: number) => {
    for (let i = len - 1; i >= 0; i--) bits.push((val >>> i) & 1);
  };
  put(0b0100, 4); // byte mode
  put(bytes.length, ver < 10 ? 8 : 16);
  for (const b of bytes) put(b, 8);
  const capBits = dataCodewords(ver, ecc) * 8;
  put(0, Math.min(4, capBits - bits.length)); // terminator
  put(0, (8 - (bits.length % 8)) % 8);
  for (let pad = 0xec; bits.length < capBits; pad ^= 0xec ^ 0x11) put(pad, 8);
  const data: number[] = [];
  for (let i = 0; i < bits.length; i += 8) {
    let b = 0;
    for (let j = 0; j < 8; j++) b = (b << 1) | bits[i + j]!;
    data.push(b);
  }
  // Split into blocks (the short ones first), add each block's ECC, interleave.
  const numBlocks = NUM_BLOCKS[ecc][ver]!;
  const eccLen = ECC_PER_BLOCK[ecc][ver]!;
  const raw = Math.floor(rawModules(ver) / 8);
  const numShort = numBlocks - (raw % numBlocks);
  const shortLen = Math.floor(raw / numBlocks);
  const div = rsDivisor(eccLen);
  const blocks: number[][] = [];
  for (let i = 0, k = 0; i < numBlocks; i++) {
    const dat = data.slice(k, k + shortLen - eccLen + (i < numShort ? 0 : 1));
    k += dat.length;
    const block = [...dat];
    if (i < numShort) block.push(-1); // placeholder, skipped when interleaving
    blocks.push(block.concat(rsRemainder(dat, div)));
  }
  const out: number[] = [];
  for (let i = 0; i < blocks[0]!.length; i++) {
    for (let j = 0; j < blocks.length; j++) {
      if (i !== shortLen - eccLen || j >= numShort) out.push(blocks[j]![i]!);
    }
  }
  return out;
}

// ------------------------------------------------------------------ matrix

function encodeAt(bytes: Uint8Array, ver: number, ecc: QrEcc, forcedMask?: number): QrCode {
  const size = ver * 4 + 17;
  const dark = new Uint8Array(size * size);
  const fn = new Uint8Array(size * size);
  const set = (x: number, y: number, on: boolean) => {
    dark[y * size + x] = on ? 1 : 0;
    fn[y * size + x] = 1;
  };
  // Timing patterns.
  for (let i = 0; i < size; i++) {
    set(6, i, i % 2 === 0);
    set(i, 6, i % 2 === 0);
  }
  // Finder patterns with their separators.
  const finder = (cx: number, cy: number) => {
    for (let dy = -4; dy <= 4; dy++)
      for (let dx = -4; dx <= 4; dx++) {
        const d = Math.max(Math.abs(dx), Math.abs(dy));
        const x = cx + dx;
        const y = cy + dy;
        if (x >= 0 && x < size && y >= 0 && y < size) set(x, y, d !== 2 && d !== 4);
      }
  };
  finder(3, 3);
  finder(size - 4, 3);
  finder(3, size - 4);
  // Alignment patterns (not over the finders).
  const al = alignmentPositions(ver);
  for (let i = 0; i < al.length; i++)
    for (let j = 0; j < al.length; j++) {
      if ((i === 0 && j === 0) || (i === 0 && j === al.length - 1) || (i === al.length - 1 && j === 0))
        continue;
      for (let dy = -2; dy <= 2; dy++)
        for (let dx = -2; dx <= 2; dx++)
          set(al[i]! + dx, al[j]! + dy, Math.max(Math.abs(dx), Math.abs(dy)) !== 1);
    }
  // Reserve the format areas (drawn for real after masking) and draw the version blocks.
  const drawFormat = (mask: number) => {
    const data = (ECC_FORMAT_BITS[ecc] << 3) | mask;
    let rem = data;
    for (let i = 0; i < 10; i++) rem = (rem << 1) ^ ((rem >>> 9) * 0x537);
    const bits = ((data << 10) | rem) ^ 0x5412;
    const bit = (i: number) => ((bits >>> i) & 1) !== 0;
    for (let i = 0; i <= 5; i++) set(8, i, bit(i));
    set(8, 7, bit(6));
    set(8, 8, bit(7));
    set(7, 8, bit(8));
    for (let i = 9; i < 15; i++) set(14 - i, 8, bit(i));
    for (let i = 0; i < 8; i++) set(size - 1 - i, 8, bit(i));
    for (let i = 8; i < 15; i++) set(8, size - 15 + i, bit(i));
    set(8, size - 8, true); // the dark module
  };
  drawFormat(0);
  if (ver >= 7) {
    let rem = ver;
    for (let i = 0; i < 12; i++) rem = (rem << 1) ^ ((rem >>> 11) * 0x1f25);
    const bits = (ver << 12) | rem;
    for (let i = 0; i < 18; i++) {
      const on = ((bits >>> i) & 1) !== 0;
      const a = size - 11 + (i % 3);
      const b = Math.floor(i / 3);
      set(a, b, on);
      set(b, a, on);
    }
  }
  // Data: zigzag from the bottom-right, two columns at a time, skipping the timing column.
  const cw = codewords(bytes, ver, ecc);
  let i = 0;
  for (let right = size - 1; right >= 1; right -= 2) {
    if (right === 6) right = 5;
    for (let vert = 0; vert < size; vert++)
      for (let j = 0; j < 2; j++) {
        const x = right - j;
        const upward = ((right + 1) & 2) === 0;
        const y = upward ? size - 1 - vert : vert;
        if (fn[y * size + x] || i >= cw.length * 8) continue;
        dark[y * size + x] = (cw[i >>> 3]! >>> (7 - (i & 7))) & 1;
        i++;
      }
  }
  const applyMask = (mask: number) => {
    for (let y = 0; y < size; y++)
      for (let x = 0; x < size; x++) {
        if (fn[y * size + x]) continue;
        let inv: boolean;
        switch (mask) {
          case 0:
            inv = (x + y) % 2 === 0;
            break;
          case 1:
            inv = y % 2 === 0;
            break;
          case 2:
            inv = x % 3 === 0;
            break;
          case 3:
            inv = (x + y) % 3 === 0;
            break;
          case 4:
            inv = (Math.floor(x / 3) + Math.floor(y / 2)) % 2 === 0;
            break;
          case 5:
            inv = ((x * y) % 2) + ((x * y) % 3) === 0;
            break;
          case 6:
            inv = (((x * y) % 2) + ((x * y) % 3)) % 2 === 0;
            break;
          default:
            inv = (((x + y) % 2) + ((x * y) % 3)) % 2 === 0;
        }
        if (inv) dark[y * size + x] = dark[y * size + x]! ^ 1;
      }
  };
  let mask = forcedMask ?? -1;
  if (mask < 0 || mask > 7) {
    let best = Infinity;
    for (let m = 0; m < 8; m++) {
      applyMask(m);
      drawFormat(m);
      const p = penalty(dark, size);
      if (p < best) {
        best = p;
        mask = m;
      }
      applyMask(m); // XOR again: undo
    }
  }
  applyMask(mask);
  drawFormat(mask);
  return { version: ver, size, mask, ecc, get: (x, y) => dark[y * size + x] === 1 };
}

/** The standard's penalty score of a masked matrix (lower is better). */
function penalty(dark: Uint8Array, size: number): number {
  let score = 0;
  const at = (x: number, y: number) => dark[y * size + x]!;
  // Runs of five or more, and finder-like 1:1:3:1:1 patterns, in rows and columns.
  for (let pass = 0; pass < 2; pass++) {
    for (let a = 0; a < size; a++) {
      let run = 0;
      let prev = -1;
      const line: number[] = [];
      for (let b = 0; b < size; b++) {
        const v = pass === 0 ? at(b, a) : at(a, b);
        line.push(v);
        if (v === prev) {
          run++;
          if (run === 5) score += 3;
          else if (run > 5) score++;
        } else {
          prev = v;
          run = 1;
        }
      }
      const s = line.join('');
      for (const pat of ['10111010000', '00001011101']) {
        for (let k = s.indexOf(pat); k >= 0; k = s.indexOf(pat, k + 1)) score += 40;
      }
    }
  }
  // 2×2 blocks of one colour.
  for (let y = 0; y < size - 1; y++)
    for (let x = 0; x < size - 1; x++) {
      const c = at(x, y);
      if (c === at(x + 1, y) && c === at(x, y + 1) && c === at(x + 1, y + 1)) score += 3;
    }
  // Balance of dark and light.
  let darkCount = 0;
  for (const v of dark) darkCount += v;
  const total = size * size;
  const k = Math.ceil(Math.abs(darkCount * 20 - total * 10) / total) - 1;
  score += Math.max(0, k) * 10;
  return score;
}
