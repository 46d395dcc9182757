/**
 * The viewer's reader key: an X25519 key pair that devices wrap each sealed blob's content key to.
 * Made in WebCrypto, non-extractable (the private key never exists outside WebCrypto, like the
 * identity key in keys.ts), kept in IndexedDB (`hearth` / `keys` / `reader`) by structured clone,
 * and vouched for by the identity key (`signReaderKey`), so a device only seals to keys its viewers
 * signed. It is sent to each paired device once (`reader/key`), and the devices that said
 * `reader/ok` are remembered with it.
 *
 * Fallback: a browser that refuses a non-extractable X25519 key but makes an extractable one gets
 * that (`extractable: true` in the record; the key still never leaves this code). A browser with no
 * X25519 at all gets no reader key: clips cannot be opened there, and the timeline says so.
 */
import { type ClipReader, encodeReaderKey, signReaderKey, type X25519KeyPair } from '@hearth/protocol';
import type { Db } from './idb.js';
import type { ViewerIdentity } from './keys.js';

/** IndexedDB record of the reader key. */
export interface StoredReaderKey {
  v: 1;
  kp: CryptoKeyPair;
  /** True only in the fallback above. */
  extractable: boolean;
  created: number;
  /** Devices that stored this key (`reader/ok`). */
  acked: string[];
}

export interface ReaderKeyHandle {
  /** For protocol's openers. */
  reader: ClipReader;
  /** `encodeReaderKey(signReaderKey(identity, x25519))`: the `rk` of `reader/key`. */
  rk: string;
  extractable: boolean;
  /** Whether `deviceId` has stored this key. */
  acked(deviceId: string): boolean;
  /** Remember that `deviceId` stored it. */
  markAcked(deviceId: string): Promise<void>;
}

const KEY_ID = 'reader';

type Keys = Pick<Db, 'get' | 'add' | 'put'>;

async function generate(): Promise<{ kp: CryptoKeyPair; extractable: boolean }> {
  try {
    return {
      kp: (await crypto.subtle.generateKey('X25519', false, ['deriveBits'])) as CryptoKeyPair,
      extractable: false,
    };
  } catch (e) {
    if ((e as Error).name === 'NotSupportedError') throw e;
    return {
      kp: (await crypto.subtle.generateKey('X25519', true, ['deriveBits'])) as CryptoKeyPair,
      extractable: true,
    };
  }
}

/**
 * Load the reader key, or make and store one. Undefined when the browser has no X25519 in WebCrypto
 * (NotSupportedError). Two tabs racing agree on one key (`add`, then re-read).
 */
export async function loadOrCreateReaderKey(
  db: Keys,
  me: Pick<ViewerIdentity, 'signer' | 'keyText'>,
  now: () => number = Date.now,
): Promise<ReaderKeyHandle | undefined> {
  let rec = await db.get<StoredReaderKey>('keys', KEY_ID);
  if (!rec?.kp?.privateKey) {
    let made: { kp: CryptoKeyPair; extractable: boolean };
    try {
      made = await generate();
    } catch {
      return undefined;
    }
    const fresh: StoredReaderKey = { v: 1, ...made, created: now(), acked: [] };
    try {
      await db.add('keys', fresh, KEY_ID);
      rec = fresh;
    } catch {
      rec = await db.get<StoredReaderKey>('keys', KEY_ID);
      if (!rec?.kp?.privateKey) throw new Error('could not store the reader key in IndexedDB');
    }
  }
  const stored = rec;
  const pub = new Uint8Array(await crypto.subtle.exportKey('raw', stored.kp.publicKey));
  const x25519: X25519KeyPair = { publicKey: pub, privateKey: stored.kp.privateKey };
  const rk = encodeReaderKey(await signReaderKey(me.signer, pub));
  const acked = new Set(stored.acked);
  return {
    reader: { userKey: me.keyText, x25519 },
    rk,
    extractable: stored.extractable,
    acked: (d) => acked.has(d),
    async markAcked(d) {
      if (acked.has(d)) return;
      acked.add(d);
      await db.put('keys', { ...stored, acked: [...acked] }, KEY_ID);
    },
  };
}
