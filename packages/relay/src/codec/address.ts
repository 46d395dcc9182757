/** IP text <-> bytes and (XOR-)address attribute values (RFC 8489 §14.1, §14.2). */
import { MAGIC_COOKIE } from './constants.js';
import { StunDecodeError, StunEncodeError } from './errors.js';

/** A transport address as carried in STUN attributes. */
export interface TransportAddress {
  /** 4 or 6. */
  readonly family: 4 | 6;
  /** Canonical text form (dotted quad, or RFC 5952 compressed IPv6). */
  readonly address: string;
  readonly port: number;
}

/** Parses an IPv4 dotted quad; undefined when invalid. */
export function parseIPv4(s: string): Uint8Array | undefined {
  const parts = s.split('.');
  if (parts.length !== 4) return undefined;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i]!;
    if (!/^\d{1,3}$/.test(p) || (p.length > 1 && p[0] === '0')) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    out[i] = n;
  }
  return out;
}

/** Parses IPv6 text (with `::` and an optional trailing dotted quad, no zone id); undefined when invalid. */
export function parseIPv6(s: string): Uint8Array | undefined {
  if (s.length < 2 || s.length > 45) return undefined;
  const dbl = s.indexOf('::');
  if (dbl !== -1 && s.indexOf('::', dbl + 1) !== -1) return undefined;
  const parseGroups = (part: string): number[] | undefined => {
    if (part === '') return [];
    const groups: number[] = [];
    const items = part.split(':');
    for (let i = 0; i < items.length; i++) {
      const it = items[i]!;
      if (i === items.length - 1 && it.includes('.')) {
        const v4 = parseIPv4(it);
        if (!v4) return undefined;
        groups.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(it)) return undefined;
        groups.push(Number.parseInt(it, 16));
      }
    }
    return groups;
  };
  let groups: number[];
  if (dbl === -1) {
    const g = parseGroups(s);
    if (g?.length !== 8) return undefined;
    groups = g;
  } else {
    const head = parseGroups(s.slice(0, dbl));
    const tail = parseGroups(s.slice(dbl + 2));
    if (!head || !tail || head.length + tail.length > 7) return undefined;
    groups = [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
  }
  const out = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    out[2 * i] = groups[i]! >> 8;
    out[2 * i + 1] = groups[i]! & 0xff;
  }
  return out;
}

/** Formats 4 or 16 address bytes as canonical text (RFC 5952 for IPv6, as Node reports it). */
export function formatIP(b: Uint8Array): string {
  if (b.length === 4) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push((b[2 * i]! << 8) | b[2 * i + 1]!);
  // IPv4-mapped addresses print with a dotted tail, like inet_ntop.
  if (g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff) {
    return `::ffff:${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
  }
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (x: number) => x.toString(16);
  if (bestStart === -1) return g.map(hex).join(':');
  const left = g.slice(0, bestStart).map(hex).join(':');
  const right = g
    .slice(bestStart + bestLen)
    .map(hex)
    .join(':');
  return `${left}::${right}`;
}

/** Parses IPv4 or IPv6 text to bytes; undefined when invalid. */
export function parseIP(s: string): Uint8Array | undefined {
  return s.includes(':') ? parseIPv6(s) : parseIPv4(s);
}

function addressBytes(addr: TransportAddress): Uint8Array {
  const b = addr.family === 4 ? parseIPv4(addr.address) : parseIPv6(addr.address);
  if (!b) throw new StunEncodeError(`invalid IPv${addr.family} address`);
  if (!Number.isInteger(addr.port) || addr.port < 0 || addr.port > 0xffff) {
    throw new StunEncodeError('invalid port');
  }
  return b;
}

/** Encodes a plain (MAPPED-ADDRESS style) address value. */
export function encodeAddress(addr: TransportAddress): Uint8Array {
  const ip = addressBytes(addr);
  const out = new Uint8Array(4 + ip.length);
  out[1] = addr.family === 4 ? 1 : 2;
  out[2] = addr.port >> 8;
  out[3] = addr.port & 0xff;
  out.set(ip, 4);
  return out;
}

/** Encodes an XOR-*-ADDRESS value (RFC 8489 §14.2). `transactionId` is needed for IPv6. */
export function encodeXorAddress(addr: TransportAddress, transactionId: Uint8Array): Uint8Array {
  const out = encodeAddress(addr);
  xorInPlace(out, transactionId);
  return out;
}

function xorInPlace(v: Uint8Array, transactionId: Uint8Array): void {
  v[2] = v[2]! ^ (MAGIC_COOKIE >>> 24);
  v[3] = v[3]! ^ ((MAGIC_COOKIE >>> 16) & 0xff);
  const cookie = [
    MAGIC_COOKIE >>> 24,
    (MAGIC_COOKIE >>> 16) & 0xff,
    (MAGIC_COOKIE >>> 8) & 0xff,
    MAGIC_COOKIE & 0xff,
  ];
  for (let i = 4; i < v.length; i++) {
    const k = i - 4;
    v[i] = v[i]! ^ (k < 4 ? cookie[k]! : transactionId[k - 4]!);
  }
}

/** Decodes a plain address value. */
export function decodeAddress(value: Uint8Array): TransportAddress {
  if (value.length < 4) throw new StunDecodeError('address attribute too short');
  const fam = value[1];
  const port = (value[2]! << 8) | value[3]!;
  if (fam === 1 && value.length === 8) return { family: 4, address: formatIP(value.subarray(4, 8)), port };
  if (fam === 2 && value.length === 20) return { family: 6, address: formatIP(value.subarray(4, 20)), port };
  throw new StunDecodeError('bad address family or length');
}

/** Decodes an XOR-*-ADDRESS value. */
export function decodeXorAddress(value: Uint8Array, transactionId: Uint8Array): TransportAddress {
  if (value.length !== 8 && value.length !== 20) throw new StunDecodeError('bad XOR address length');
  const copy = value.slice();
  xorInPlace(copy, transactionId);
  return decodeAddress(copy);
}
