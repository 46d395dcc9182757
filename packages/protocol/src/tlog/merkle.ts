/**
 * RFC 6962 / RFC 9162 Merkle tree hashing (section 2.1), written by hand on WebCrypto SHA-256:
 * leaf and node hashes with their domain-separation prefixes, the tree head (MTH) of any size,
 * inclusion proofs (2.1.3) and consistency proofs (2.1.4), both generation and verification.
 *
 * Tree sizes and indices are JavaScript safe integers (at most 2^53 - 1); the arithmetic below never
 * uses 32-bit bitwise operators, so every size in that range works. Verification never throws for a
 * bad proof: it returns false (the log layer turns that into E_LOG_PROOF / E_LOG_FORK).
 */
import { concat, constantTimeEqual } from '../bytes.js';
import { sha256 } from '../crypto/primitives.js';
import { ProtocolError } from '../errors.js';

/** Size of every hash in the tree (SHA-256). */
export const HASH_SIZE = 32;
/** Largest tree size (and index + 1) the log accepts: the largest safe integer. */
export const MAX_TREE_SIZE = Number.MAX_SAFE_INTEGER;
/** Most hashes in an inclusion or a consistency proof for any tree of at most MAX_TREE_SIZE leaves. */
export const MAX_PROOF_HASHES = 2 * 54;

const LEAF_PREFIX = new Uint8Array([0x00]);
const NODE_PREFIX = new Uint8Array([0x01]);

/** The leaf hash: SHA-256(0x00 || data). */
export function leafHash(data: Uint8Array): Promise<Uint8Array> {
  return sha256(concat(LEAF_PREFIX, data));
}

/** An interior node hash: SHA-256(0x01 || left || right). */
export function nodeHash(left: Uint8Array, right: Uint8Array): Promise<Uint8Array> {
  return sha256(concat(NODE_PREFIX, left, right));
}

/** The root of the empty tree: SHA-256 of the empty string. */
export function emptyRoot(): Promise<Uint8Array> {
  return sha256(new Uint8Array());
}

/** The largest power of two strictly smaller than `n` (n >= 2). */
export function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

const isSize = (n: number): boolean => Number.isSafeInteger(n) && n >= 0;
const lsb = (n: number): boolean => n % 2 === 1;
const half = (n: number): number => Math.floor(n / 2);

/** MTH over `leaves[lo, hi)` (leaf hashes): the RFC's recursive split, O(hi - lo) hashes, depth log2. */
async function rangeRoot(leaves: readonly Uint8Array[], lo: number, hi: number): Promise<Uint8Array> {
  if (hi <= lo) return emptyRoot();
  if (hi - lo === 1) return leaves[lo]!;
  const k = splitPoint(hi - lo);
  return nodeHash(await rangeRoot(leaves, lo, lo + k), await rangeRoot(leaves, lo + k, hi));
}

/** The Merkle tree head (RFC 9162 MTH) of the first `size` leaf hashes (default: all of them). */
export function treeHead(leaves: readonly Uint8Array[], size = leaves.length): Promise<Uint8Array> {
  if (!isSize(size) || size > leaves.length) throw new RangeError('tree size beyond the leaves');
  return rangeRoot(leaves, 0, size);
}

/**
 * The inclusion proof (RFC 9162 2.1.3.1, PATH) of leaf `index` in the tree of the first `size` leaf
 * hashes: the audit path, nearest the leaf first.
 */
export async function inclusionProof(
  leaves: readonly Uint8Array[],
  index: number,
  size = leaves.length,
): Promise<Uint8Array[]> {
  if (!isSize(size) || size > leaves.length) throw new RangeError('tree size beyond the leaves');
  if (!isSize(index) || index >= size) throw new RangeError('leaf index outside the tree');
  const path: Uint8Array[] = [];
  // PATH(m, D[lo:hi]) descends into the half holding m and appends the other half's MTH.
  const walk = async (m: number, lo: number, hi: number): Promise<void> => {
    if (hi - lo <= 1) return;
    const k = splitPoint(hi - lo);
    if (m < k) {
      await walk(m, lo, lo + k);
      path.push(await rangeRoot(leaves, lo + k, hi));
    } else {
      await walk(m - k, lo + k, hi);
      path.push(await rangeRoot(leaves, lo, lo + k));
    }
  };
  await walk(index, 0, size);
  return path;
}

/**
 * The consistency proof (RFC 9162 2.1.4.1, PROOF) between the trees of the first `size1` and the
 * first `size2` leaf hashes. Empty when size1 is 0 or size1 == size2.
 */
export async function consistencyProof(
  leaves: readonly Uint8Array[],
  size1: number,
  size2 = leaves.length,
): Promise<Uint8Array[]> {
  if (!isSize(size2) || size2 > leaves.length) throw new RangeError('tree size beyond the leaves');
  if (!isSize(size1) || size1 > size2) throw new RangeError('first size larger than the second');
  if (size1 === 0 || size1 === size2) return [];
  const proof: Uint8Array[] = [];
  // SUBPROOF(m, D[lo:hi], b)
  const sub = async (m: number, lo: number, hi: number, b: boolean): Promise<void> => {
    const n = hi - lo;
    if (m === n) {
      if (!b) proof.push(await rangeRoot(leaves, lo, hi));
      return;
    }
    const k = splitPoint(n);
    if (m <= k) {
      await sub(m, lo, lo + k, b);
      proof.push(await rangeRoot(leaves, lo + k, hi));
    } else {
      await sub(m - k, lo + k, hi, false);
      proof.push(await rangeRoot(leaves, lo, lo + k));
    }
  };
  await sub(size1, 0, size2, true);
  return proof;
}

const isHash = (h: unknown): h is Uint8Array => h instanceof Uint8Array && h.length === HASH_SIZE;

/**
 * The root an inclusion proof implies (RFC 9162 2.1.3.2), or undefined when the proof cannot be
 * one for this index and size (wrong length, index outside the tree, a hash of the wrong size).
 */
export async function rootFromInclusionProof(
  index: number,
  size: number,
  leaf: Uint8Array,
  proof: readonly Uint8Array[],
): Promise<Uint8Array | undefined> {
  if (!isSize(size) || !isSize(index) || index >= size) return undefined;
  if (!isHash(leaf) || proof.length > MAX_PROOF_HASHES || !proof.every(isHash)) return undefined;
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0) return undefined;
    if (lsb(fn) || fn === sn) {
      r = await nodeHash(p, r);
      while (!lsb(fn) && fn !== 0) {
        fn = half(fn);
        sn = half(sn);
      }
    } else {
      r = await nodeHash(r, p);
    }
    fn = half(fn);
    sn = half(sn);
  }
  return sn === 0 ? r : undefined;
}

/** True when `proof` shows that `leaf` (a leaf hash) is leaf `index` of the tree of `size` with `root`. */
export async function verifyInclusion(
  index: number,
  size: number,
  leaf: Uint8Array,
  proof: readonly Uint8Array[],
  root: Uint8Array,
): Promise<boolean> {
  if (!isHash(root)) return false;
  const r = await rootFromInclusionProof(index, size, leaf, proof);
  return r !== undefined && constantTimeEqual(r, root);
}

/**
 * True when `proof` shows that the tree of `size1` leaves with `root1` is a prefix of the tree of
 * `size2` leaves with `root2` (RFC 9162 2.1.4.2). Size 0 is a prefix of everything (the proof must be
 * empty); equal sizes need equal roots and an empty proof; size1 > size2 never verifies.
 */
export async function verifyConsistency(
  size1: number,
  size2: number,
  root1: Uint8Array,
  root2: Uint8Array,
  proof: readonly Uint8Array[],
): Promise<boolean> {
  if (!isSize(size1) || !isSize(size2) || size1 > size2) return false;
  if (!isHash(root1) || !isHash(root2)) return false;
  if (proof.length > MAX_PROOF_HASHES || !proof.every(isHash)) return false;
  if (size1 === size2) return proof.length === 0 && constantTimeEqual(root1, root2);
  if (size1 === 0) return proof.length === 0;
  // 1. An empty path fails.
  if (proof.length === 0) return false;
  // 2. If size1 is an exact power of 2, prepend root1.
  const path = splitPoint(size1 + 1) === size1 ? [root1, ...proof] : [...proof];
  // 3.
  let fn = size1 - 1;
  let sn = size2 - 1;
  // 4.
  while (lsb(fn)) {
    fn = half(fn);
    sn = half(sn);
  }
  // 5.
  let fr = path[0]!;
  let sr = path[0]!;
  // 6.
  for (const c of path.slice(1)) {
    if (sn === 0) return false;
    if (lsb(fn) || fn === sn) {
      fr = await nodeHash(c, fr);
      sr = await nodeHash(c, sr);
      while (!lsb(fn) && fn !== 0) {
        fn = half(fn);
        sn = half(sn);
      }
    } else {
      sr = await nodeHash(sr, c);
    }
    fn = half(fn);
    sn = half(sn);
  }
  // 7.
  return sn === 0 && constantTimeEqual(fr, root1) && constantTimeEqual(sr, root2);
}

// ------------------------------------------------------------------ proof wire form

/** A proof on the wire: the concatenation of its hashes (32 bytes each, in order). */
export function encodeProof(proof: readonly Uint8Array[]): Uint8Array {
  if (!proof.every(isHash)) throw new RangeError('proof hashes must be 32 bytes');
  return concat(...proof);
}

/**
 * Decode a proof's wire form. Raises ProtocolError E_TOO_LARGE past MAX_PROOF_HASHES hashes and
 * E_DECODE for a length that is not a multiple of 32; never anything untyped.
 */
export function decodeProof(bytes: unknown, maxHashes = MAX_PROOF_HASHES): Uint8Array[] {
  if (!(bytes instanceof Uint8Array)) throw new ProtocolError('E_DECODE', 'proof: expected bytes');
  if (bytes.length > maxHashes * HASH_SIZE)
    throw new ProtocolError('E_TOO_LARGE', `proof: more than ${maxHashes} hashes`);
  if (bytes.length % HASH_SIZE !== 0)
    throw new ProtocolError('E_DECODE', 'proof: length is not a multiple of 32 bytes');
  const out: Uint8Array[] = [];
  for (let o = 0; o < bytes.length; o += HASH_SIZE) out.push(bytes.slice(o, o + HASH_SIZE));
  return out;
}

/**
 * The RFC 9162 tree over the log's leaf hashes, with the root of every complete (power-of-two)
 * subtree kept once computed: an append-only log never changes them, so a root, an inclusion or
 * a consistency proof costs O(log² n) hashes instead of O(n). The algorithms are the protocol's
 * (MTH, PATH and PROOF above); the tests check it against those and through LogMonitor. The device
 * keeps one over its log's leaves.
 */
export class CachedTree {
  private readonly full = new Map<number, Map<number, Uint8Array>>();
  constructor(private readonly leaves: readonly Uint8Array[]) {}

  async root(lo: number, hi: number): Promise<Uint8Array> {
    const n = hi - lo;
    if (n <= 0) return emptyRoot();
    if (n === 1) return this.leaves[lo]!;
    const complete = (n & (n - 1)) === 0;
    if (complete) {
      const hit = this.full.get(n)?.get(lo);
      if (hit) return hit;
    }
    const k = splitPoint(n);
    const h = await nodeHash(await this.root(lo, lo + k), await this.root(lo + k, hi));
    if (complete) {
      let m = this.full.get(n);
      if (!m) {
        m = new Map();
        this.full.set(n, m);
      }
      m.set(lo, h);
    }
    return h;
  }

  /** PATH(index, D[0:size]): nearest the leaf first. */
  async inclusion(index: number, size: number): Promise<Uint8Array[]> {
    if (index < 0 || index >= size || size > this.leaves.length)
      throw new RangeError('leaf outside the tree');
    const path: Uint8Array[] = [];
    const walk = async (m: number, lo: number, hi: number): Promise<void> => {
      if (hi - lo <= 1) return;
      const k = splitPoint(hi - lo);
      if (m < k) {
        await walk(m, lo, lo + k);
        path.push(await this.root(lo + k, hi));
      } else {
        await walk(m - k, lo + k, hi);
        path.push(await this.root(lo, lo + k));
      }
    };
    await walk(index, 0, size);
    return path;
  }

  /** PROOF(size1, D[0:size2]); empty when size1 is 0 or equals size2. */
  async consistency(size1: number, size2: number): Promise<Uint8Array[]> {
    if (size1 < 0 || size1 > size2 || size2 > this.leaves.length)
      throw new RangeError('sizes outside the tree');
    if (size1 === 0 || size1 === size2) return [];
    const proof: Uint8Array[] = [];
    const sub = async (m: number, lo: number, hi: number, b: boolean): Promise<void> => {
      const n = hi - lo;
      if (m === n) {
        if (!b) proof.push(await this.root(lo, hi));
        return;
      }
      const k = splitPoint(n);
      if (m <= k) {
        await sub(m, lo, lo + k, b);
        proof.push(await this.root(lo + k, hi));
      } else {
        await sub(m - k, lo + k, hi, false);
        proof.push(await this.root(lo, lo + k));
      }
    };
    await sub(size1, 0, size2, true);
    return proof;
  }
}
