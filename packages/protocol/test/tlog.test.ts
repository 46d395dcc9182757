/**
 * The access log's Merkle tree (src/tlog/merkle.ts): the RFC 6962 test vectors (as transparency-dev/
 * merkle and Go's sumdb/tlog carry them), and every tree of 1..64 random leaves against a naive
 * reference written straight from RFC 9162's recursive definitions (with @noble/hashes' SHA-256, an
 * implementation independent of WebCrypto's), for every inclusion and consistency proof.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js';
import { concat, fromHex, hex } from '../src/bytes.js';
import { ProtocolError } from '../src/errors.js';
import {
  CachedTree,
  consistencyProof,
  decodeProof,
  emptyRoot,
  encodeProof,
  inclusionProof,
  leafHash,
  MAX_PROOF_HASHES,
  nodeHash,
  rootFromInclusionProof,
  treeHead,
  verifyConsistency,
  verifyInclusion,
} from '../src/tlog/index.js';

// ------------------------------------------------------------------ RFC 6962 vectors

const LEAVES = [
  '',
  '00',
  '10',
  '2021',
  '3031',
  '40414243',
  '5051525354555657',
  '606162636465666768696a6b6c6d6e6f',
].map(fromHex);

/** Roots of the trees of the first 1..8 leaves. */
const ROOTS = [
  '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
  'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
  'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
  'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
  '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
  'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
  '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
];
const EMPTY_ROOT = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

/** Leaf hashes of the 8 leaves, and two levels of interior nodes. */
const LEAF_HASHES = [
  '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
  '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
  '0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7',
  '07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7',
  'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
  '4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658',
  'b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f',
  '46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1',
];
const LEVEL1 = [
  'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
  '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
  '0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a',
  'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
];
const LEVEL2 = [
  'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4',
];

/** Inclusion proofs: [leaf index (0-based), tree size, path]. */
const INCLUSION: [number, number, string[]][] = [
  [0, 1, []],
  [
    0,
    8,
    [
      '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4',
    ],
  ],
  [
    5,
    8,
    [
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
      'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ],
  ],
  [2, 3, ['fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125']],
  [
    1,
    5,
    [
      '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
    ],
  ],
];

/** Consistency proofs: [size1, size2, proof]. */
const CONSISTENCY: [number, number, string[]][] = [
  [1, 1, []],
  [
    1,
    8,
    [
      '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4',
    ],
  ],
  [
    6,
    8,
    [
      '0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a',
      'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ],
  ],
  [
    2,
    5,
    [
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
    ],
  ],
  [
    6,
    7,
    [
      '0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a',
      'b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ],
  ],
];

const SOME_HASH = fromHex('abacaba000000000000000000000000000000000000000000060061e00123456');

async function vectorLeafHashes(): Promise<Uint8Array[]> {
  return Promise.all(LEAVES.map(leafHash));
}

/** Variants of a valid inclusion proof that must all fail (after transparency-dev/merkle's probes). */
function corruptInclusion(
  index: number,
  size: number,
  proof: Uint8Array[],
  root: Uint8Array,
  leaf: Uint8Array,
) {
  const out: [string, number, number, Uint8Array, Uint8Array[], Uint8Array][] = [
    ['index - 1', index - 1, size, leaf, proof, root],
    ['index + 1', index + 1, size, leaf, proof, root],
    ['index ^ 2', index ^ 2, size, leaf, proof, root],
    ['size * 2', index, size * 2, leaf, proof, root],
    ['size / 2', index, Math.floor(size / 2), leaf, proof, root],
    ['wrong leaf', index, size, SOME_HASH, proof, root],
    ['empty root', index, size, leaf, proof, fromHex(EMPTY_ROOT)],
    ['random root', index, size, leaf, proof, SOME_HASH],
    ['trailing empty', index, size, leaf, [...proof, new Uint8Array()], root],
    ['trailing root', index, size, leaf, [...proof, root], root],
    ['preceding empty', index, size, leaf, [new Uint8Array(), ...proof], root],
    ['preceding root', index, size, leaf, [root, ...proof], root],
  ];
  proof.forEach((_, i) => {
    const p = proof.map((h) => h.slice());
    p[i]![0]! ^= 8;
    out.push([`bit flip in proof[${i}]`, index, size, leaf, p, root]);
  });
  if (proof.length > 0) out.push(['removed last', index, size, leaf, proof.slice(0, -1), root]);
  if (proof.length > 1)
    out.push(['inserted', index, size, leaf, [proof[0]!, SOME_HASH, ...proof.slice(1)], root]);
  return out;
}

function corruptConsistency(s1: number, s2: number, r1: Uint8Array, r2: Uint8Array, proof: Uint8Array[]) {
  const out: [string, number, number, Uint8Array, Uint8Array, Uint8Array[]][] = [
    ['size1 - 1', s1 - 1, s2, r1, r2, proof],
    ['size1 + 1', s1 + 1, s2, r1, r2, proof],
    ['size1 ^ 2', s1 ^ 2, s2, r1, r2, proof],
    ['size2 * 2', s1, s2 * 2, r1, r2, proof],
    ['size2 / 2', s1, Math.floor(s2 / 2), r1, r2, proof],
    ['wrong root1', s1, s2, SOME_HASH, r2, proof],
    ['wrong root2', s1, s2, r1, SOME_HASH, proof],
    ['swapped roots', s1, s2, r2, r1, proof],
    ['empty proof', s1, s2, r1, r2, []],
    ['trailing root1', s1, s2, r1, r2, [...proof, r1]],
    ['trailing root2', s1, s2, r1, r2, [...proof, r2]],
    ['preceding root1', s1, s2, r1, r2, [r1, ...proof]],
    ['preceding root2', s1, s2, r1, r2, [r2, ...proof]],
    ['preceding proof[0]', s1, s2, r1, r2, [proof[0]!, ...proof]],
    ['truncated', s1, s2, r1, r2, proof.slice(0, -1)],
  ];
  proof.forEach((_, i) => {
    const p = proof.map((h) => h.slice());
    p[i]![0]! ^= 16;
    out.push([`bit flip in proof[${i}]`, s1, s2, r1, r2, p]);
  });
  return out;
}

describe('tlog Merkle tree: RFC 6962 vectors', () => {
  it('leaf and node hashes, with the 0x00 and 0x01 prefixes', async () => {
    const lh = await vectorLeafHashes();
    assert.deepEqual(lh.map(hex), LEAF_HASHES);
    for (let i = 0; i < 4; i++) assert.equal(hex(await nodeHash(lh[2 * i]!, lh[2 * i + 1]!)), LEVEL1[i]);
    for (let i = 0; i < 2; i++)
      assert.equal(hex(await nodeHash(fromHex(LEVEL1[2 * i]!), fromHex(LEVEL1[2 * i + 1]!))), LEVEL2[i]);
    assert.equal(hex(await nodeHash(fromHex(LEVEL2[0]!), fromHex(LEVEL2[1]!))), ROOTS[7]);
  });

  it('tree heads of sizes 0..8', async () => {
    const lh = await vectorLeafHashes();
    assert.equal(hex(await treeHead(lh, 0)), EMPTY_ROOT);
    assert.equal(hex(await emptyRoot()), EMPTY_ROOT);
    for (let n = 1; n <= 8; n++) assert.equal(hex(await treeHead(lh, n)), ROOTS[n - 1], `size ${n}`);
    assert.equal(hex(await treeHead(lh)), '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328');
  });

  it('inclusion proofs: generated equal the vectors, verify, and every corruption fails', async () => {
    const lh = await vectorLeafHashes();
    for (const [index, size, path] of INCLUSION) {
      const proof = path.map(fromHex);
      assert.deepEqual((await inclusionProof(lh, index, size)).map(hex), path, `${index}/${size}`);
      const root = fromHex(ROOTS[size - 1]!);
      assert.equal(hex((await rootFromInclusionProof(index, size, lh[index]!, proof))!), ROOTS[size - 1]);
      assert.ok(await verifyInclusion(index, size, lh[index]!, proof, root));
      for (const [desc, i, n, leaf, p, r] of corruptInclusion(index, size, proof, root, lh[index]!))
        assert.equal(await verifyInclusion(i, n, leaf, p, r), false, `${index}/${size}: ${desc}`);
    }
  });

  it('inclusion: degenerate inputs never verify', async () => {
    for (const [index, size] of [
      [0, 0],
      [1, 0],
      [2, 1],
      [-1, 4],
      [0.5, 4],
      [0, Number.POSITIVE_INFINITY],
    ] as const) {
      assert.equal(await verifyInclusion(index, size, SOME_HASH, [], new Uint8Array()), false);
      assert.equal(await verifyInclusion(index, size, SOME_HASH, [], fromHex(EMPTY_ROOT)), false);
    }
    const h = await leafHash(new TextEncoder().encode('data'));
    assert.ok(await verifyInclusion(0, 1, h, [], h));
    assert.equal(await verifyInclusion(0, 1, new Uint8Array(), [], h), false);
    assert.equal(await verifyInclusion(0, 1, h, [], new Uint8Array()), false);
    assert.equal(await verifyInclusion(0, 1, h, [h], h), false);
  });

  it('consistency proofs: generated equal the vectors, verify, and every corruption fails', async () => {
    const lh = await vectorLeafHashes();
    for (const [s1, s2, path] of CONSISTENCY) {
      const proof = path.map(fromHex);
      assert.deepEqual((await consistencyProof(lh, s1, s2)).map(hex), path, `${s1}→${s2}`);
      const r1 = fromHex(ROOTS[s1 - 1]!);
      const r2 = fromHex(ROOTS[s2 - 1]!);
      assert.ok(await verifyConsistency(s1, s2, r1, r2, proof), `${s1}→${s2}`);
      if (proof.length === 0) continue;
      for (const [desc, a, b, x, y, p] of corruptConsistency(s1, s2, r1, r2, proof))
        assert.equal(await verifyConsistency(a, b, x, y, p), false, `${s1}→${s2}: ${desc}`);
    }
  });

  it('consistency: the edge cases of transparency-dev/merkle', async () => {
    const r1 = fromHex(ROOTS[0]!);
    const r2 = fromHex(ROOTS[1]!);
    const e = fromHex(EMPTY_ROOT);
    const cases: [number, number, Uint8Array, Uint8Array, Uint8Array[], boolean][] = [
      [0, 0, r1, r2, [], false],
      [1, 1, r1, r2, [], false],
      [0, 0, r1, r1, [], true],
      [0, 1, r1, r2, [], true],
      [1, 1, r2, r2, [], true],
      [1, 0, r1, r2, [], false],
      [2, 1, r1, r2, [], false],
      [1, 2, r1, r2, [], false],
      [0, 0, e, r2, [], false],
      [1, 1, e, r2, [], false],
      [0, 0, e, e, [e], false],
      [0, 1, e, e, [e], false],
      [1, 1, e, e, [e], false],
    ];
    for (const [s1, s2, a, b, p, want] of cases)
      assert.equal(await verifyConsistency(s1, s2, a, b, p), want, `${s1}→${s2}`);
  });
});

// ------------------------------------------------------------------ naive reference

const refLeaf = (d: Uint8Array) => nobleSha256(concat(new Uint8Array([0]), d));
const refNode = (l: Uint8Array, r: Uint8Array) => nobleSha256(concat(new Uint8Array([1]), l, r));
const refK = (n: number) => 2 ** Math.ceil(Math.log2(n) - 1);

/** MTH(D[n]) exactly as RFC 9162 2.1.1 writes it. */
function refMth(d: Uint8Array[]): Uint8Array {
  if (d.length === 0) return nobleSha256(new Uint8Array());
  if (d.length === 1) return refLeaf(d[0]!);
  const k = refK(d.length);
  return refNode(refMth(d.slice(0, k)), refMth(d.slice(k)));
}

/** PATH(m, D[n]), RFC 9162 2.1.3.1. */
function refPath(m: number, d: Uint8Array[]): Uint8Array[] {
  if (d.length === 1) return [];
  const k = refK(d.length);
  return m < k
    ? [...refPath(m, d.slice(0, k)), refMth(d.slice(k))]
    : [...refPath(m - k, d.slice(k)), refMth(d.slice(0, k))];
}

/** SUBPROOF(m, D[n], b), RFC 9162 2.1.4.1. */
function refSubproof(m: number, d: Uint8Array[], b: boolean): Uint8Array[] {
  if (m === d.length) return b ? [] : [refMth(d)];
  const k = refK(d.length);
  return m <= k
    ? [...refSubproof(m, d.slice(0, k), b), refMth(d.slice(k))]
    : [...refSubproof(m - k, d.slice(k), false), refMth(d.slice(0, k))];
}

/** A deterministic stream of pseudo-random leaves (lengths 0..40). */
function randomLeaves(n: number, seed: number): Uint8Array[] {
  let x = seed >>> 0 || 1;
  const next = () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
  return Array.from({ length: n }, () => Uint8Array.from({ length: next() % 41 }, () => next() & 0xff));
}

describe('tlog Merkle tree: every tree of 1..64 random leaves against the naive reference', () => {
  const MAX = 64;
  const data = randomLeaves(MAX, 0x5eed);

  it('the reference itself reproduces the RFC 6962 vectors', () => {
    for (let n = 1; n <= 8; n++) assert.equal(hex(refMth(LEAVES.slice(0, n))), ROOTS[n - 1]);
    for (const [i, n, path] of INCLUSION) assert.deepEqual(refPath(i, LEAVES.slice(0, n)).map(hex), path);
    for (const [m, n, path] of CONSISTENCY)
      if (m < n) assert.deepEqual(refSubproof(m, LEAVES.slice(0, n), true).map(hex), path);
  });

  it('roots and all inclusion proofs', async () => {
    const lh = await Promise.all(data.map(leafHash));
    for (let n = 1; n <= MAX; n++) {
      const d = data.slice(0, n);
      const root = await treeHead(lh, n);
      assert.equal(hex(root), hex(refMth(d)), `root of ${n}`);
      for (let i = 0; i < n; i++) {
        const proof = await inclusionProof(lh, i, n);
        assert.deepEqual(proof.map(hex), refPath(i, d).map(hex), `path ${i}/${n}`);
        assert.ok(await verifyInclusion(i, n, lh[i]!, proof, root), `verify ${i}/${n}`);
        // The proof is for this index only: any other index of the same tree fails.
        if (n > 1) assert.equal(await verifyInclusion((i + 1) % n, n, lh[i]!, proof, root), false);
        if (proof.length > 0) {
          const bad = proof.map((h) => h.slice());
          bad[(i * 7) % bad.length]![31]! ^= 1;
          assert.equal(await verifyInclusion(i, n, lh[i]!, bad, root), false);
        }
      }
    }
  });

  it('all consistency proofs', async () => {
    const lh = await Promise.all(data.map(leafHash));
    const roots = [await emptyRoot()];
    for (let n = 1; n <= MAX; n++) roots.push(await treeHead(lh, n));
    for (let n = 1; n <= MAX; n++) {
      const d = data.slice(0, n);
      for (let m = 0; m <= n; m++) {
        const proof = await consistencyProof(lh, m, n);
        const want = m === 0 || m === n ? [] : refSubproof(m, d, true);
        assert.deepEqual(proof.map(hex), want.map(hex), `proof ${m}→${n}`);
        assert.ok(await verifyConsistency(m, n, roots[m]!, roots[n]!, proof), `verify ${m}→${n}`);
        if (m > 0 && m < n) {
          // Another history of size m (its last leaf changed) is not a prefix.
          const other = await leafHash(new Uint8Array([0xff, m]));
          const forked = await treeHead([...lh.slice(0, m - 1), other], m);
          assert.equal(await verifyConsistency(m, n, forked, roots[n]!, proof), false, `fork ${m}→${n}`);
          const bad = proof.map((h) => h.slice());
          bad[(m + n) % bad.length]![0]! ^= 0x80;
          assert.equal(await verifyConsistency(m, n, roots[m]!, roots[n]!, bad), false);
        }
      }
    }
  });

  it('sizes beyond 32 bits verify (no 32-bit bitwise arithmetic)', async () => {
    // A tree of 2^40 + 1 leaves whose left subtree is complete: the proof for the last leaf is the
    // left subtree's root, and the proof for leaf 0 of size 2^40 is 40 hashes.
    const left = SOME_HASH;
    const last = await leafHash(new Uint8Array([1]));
    const size = 2 ** 40 + 1;
    const root = await nodeHash(left, last);
    assert.ok(await verifyInclusion(size - 1, size, last, [left], root));
    assert.equal(await verifyInclusion(size - 2, size, last, [left], root), false);
    // Leaf 2^33 + 5 in a tree of 2^34 leaves: the path is 34 hashes; recompute its root by hand.
    const index = 2 ** 33 + 5;
    const n = 2 ** 34;
    const path = Array.from({ length: 34 }, (_, i) => nobleSha256(new Uint8Array([i])));
    let r = last;
    let idx = index;
    for (const p of path) {
      r = idx % 2 === 1 ? refNode(p, r) : refNode(r, p);
      idx = Math.floor(idx / 2);
    }
    assert.ok(await verifyInclusion(index, n, last, path, r));
    assert.equal(await verifyInclusion(index - 1, n, last, path, r), false);
  });
});

describe('tlog proof wire form', () => {
  it('round trip, limits and typed errors', async () => {
    const lh = await vectorLeafHashes();
    const proof = await inclusionProof(lh, 5, 8);
    const bytes = encodeProof(proof);
    assert.equal(bytes.length, 96);
    assert.deepEqual(decodeProof(bytes).map(hex), proof.map(hex));
    assert.deepEqual(decodeProof(new Uint8Array()), []);
    assert.equal(decodeProof(new Uint8Array(MAX_PROOF_HASHES * 32)).length, MAX_PROOF_HASHES);
    const code = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        assert.ok(e instanceof ProtocolError);
        return e.code;
      }
      return 'ok';
    };
    assert.equal(
      code(() => decodeProof(new Uint8Array(33))),
      'E_DECODE',
    );
    assert.equal(
      code(() => decodeProof(new Uint8Array((MAX_PROOF_HASHES + 1) * 32))),
      'E_TOO_LARGE',
    );
    assert.equal(
      code(() => decodeProof('00' as unknown)),
      'E_DECODE',
    );
    assert.throws(() => encodeProof([new Uint8Array(31)]), RangeError);
  });
});

describe('CachedTree', () => {
  it('roots and proofs are the protocol merkle.ts ones for every size up to 40 (cached across calls)', async () => {
    const leaves = await Promise.all(Array.from({ length: 40 }, (_, i) => leafHash(new Uint8Array([i]))));
    const tree = new CachedTree(leaves);
    const hexes = (a: Uint8Array[]) => a.map((h) => hex(h));
    for (let n = 0; n <= 40; n++) {
      assert.deepEqual(await tree.root(0, n), await treeHead(leaves, n));
      for (let i = 0; i < n; i++)
        assert.deepEqual(hexes(await tree.inclusion(i, n)), hexes(await inclusionProof(leaves, i, n)));
      for (let m = 0; m <= n; m++)
        assert.deepEqual(hexes(await tree.consistency(m, n)), hexes(await consistencyProof(leaves, m, n)));
    }
  });
});
