// Hearth app icons, drawn from one geometry: an amber house with a camera lens, on a warm dark
// background. Produces the SVG text and RGBA PNGs (a minimal PNG encoder over node:zlib), so the
// build needs no image tools and the icons are reproducible byte for byte.
import { deflateSync } from 'node:zlib';

const BG = [0x1c, 0x19, 0x17];
const AMBER = [0xf5, 0x9e, 0x0b];

// Geometry in unit coordinates (0..1). `scale` shrinks the glyph around the centre (maskable icons
// keep their content in the central 80% safe zone).
function shapes(scale) {
  const s = (v) => 0.5 + (v - 0.5) * scale;
  return {
    roof: [
      [s(0.5), s(0.16)],
      [s(0.86), s(0.47)],
      [s(0.14), s(0.47)],
    ],
    body: { x0: s(0.24), y0: s(0.44), x1: s(0.76), y1: s(0.82) },
    lensOuter: { cx: s(0.5), cy: s(0.62), r: 0.125 * scale },
    lensInner: { cx: s(0.5), cy: s(0.62), r: 0.055 * scale },
  };
}

function inTriangle([a, b, c], x, y) {
  const d = (p, q) => (x - q[0]) * (p[1] - q[1]) - (p[0] - q[0]) * (y - q[1]);
  const d1 = d(a, b);
  const d2 = d(b, c);
  const d3 = d(c, a);
  return !((d1 < 0 || d2 < 0 || d3 < 0) && (d1 > 0 || d2 > 0 || d3 > 0));
}

function inRoundRect(x, y, r) {
  const cx = Math.min(Math.max(x, r), 1 - r);
  const cy = Math.min(Math.max(y, r), 1 - r);
  return (x - cx) ** 2 + (y - cy) ** 2 <= r * r;
}

/** RGBA color at (x, y), or null for transparent. */
function colorAt(x, y, g, rounded) {
  if (rounded && !inRoundRect(x, y, 0.22)) return null;
  const inCircle = (c) => (x - c.cx) ** 2 + (y - c.cy) ** 2 <= c.r * c.r;
  if (inCircle(g.lensInner)) return AMBER;
  if (inCircle(g.lensOuter)) return BG;
  const b = g.body;
  if ((x >= b.x0 && x <= b.x1 && y >= b.y0 && y <= b.y1) || inTriangle(g.roof, x, y)) return AMBER;
  return BG;
}

function crc32(buf) {
  let c = ~0;
  for (const byte of buf) {
    c ^= byte;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}

function chunk(type, data) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}

/** Render a square PNG of `size` pixels (4×4 supersampling). */
export function iconPng(size, { maskable = false } = {}) {
  const g = shapes(maskable ? 0.72 : 0.86);
  const rounded = !maskable;
  const SS = 4;
  const raw = Buffer.alloc(size * (size * 4 + 1));
  for (let py = 0; py < size; py++) {
    const row = py * (size * 4 + 1);
    raw[row] = 0; // filter: none
    for (let px = 0; px < size; px++) {
      let r = 0;
      let gg = 0;
      let b = 0;
      let a = 0;
      for (let sy = 0; sy < SS; sy++) {
        for (let sx = 0; sx < SS; sx++) {
          const c = colorAt((px + (sx + 0.5) / SS) / size, (py + (sy + 0.5) / SS) / size, g, rounded);
          if (!c) continue;
          r += c[0];
          gg += c[1];
          b += c[2];
          a++;
        }
      }
      const o = row + 1 + px * 4;
      if (a > 0) {
        raw[o] = Math.round(r / a);
        raw[o + 1] = Math.round(gg / a);
        raw[o + 2] = Math.round(b / a);
      }
      raw[o + 3] = Math.round((a * 255) / (SS * SS));
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(size, 0);
  ihdr.writeUInt32BE(size, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 6; // RGBA
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw, { level: 9 })),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** The same icon as SVG (favicon, and any size). */
export function iconSvg() {
  const g = shapes(0.86);
  const hex = (c) => `#${c.map((v) => v.toString(16).padStart(2, '0')).join('')}`;
  const n = (v) => +(v * 100).toFixed(2);
  const pts = g.roof.map(([x, y]) => `${n(x)},${n(y)}`).join(' ');
  const b = g.body;
  return [
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 100 100">',
    `<rect width="100" height="100" rx="22" fill="${hex(BG)}"/>`,
    `<polygon points="${pts}" fill="${hex(AMBER)}"/>`,
    `<rect x="${n(b.x0)}" y="${n(b.y0)}" width="${n(b.x1 - b.x0)}" height="${n(b.y1 - b.y0)}" fill="${hex(AMBER)}"/>`,
    `<circle cx="${n(g.lensOuter.cx)}" cy="${n(g.lensOuter.cy)}" r="${n(g.lensOuter.r)}" fill="${hex(BG)}"/>`,
    `<circle cx="${n(g.lensInner.cx)}" cy="${n(g.lensInner.cy)}" r="${n(g.lensInner.r)}" fill="${hex(AMBER)}"/>`,
    '</svg>',
    '',
  ].join('\n');
}
