/**
 * The viewer's identity: one Ed25519 key pair generated in the browser, non-extractable, kept in
 * IndexedDB. The private key never exists outside WebCrypto, so no script (ours or an injected
 * one) can copy it off the device; it can only ask WebCrypto to sign while the page is open.
 */
import { encodeId, type UserKeyText, WebCryptoSigner } from '@hearth/protocol';
import type { Db } from './idb.js';

/** IndexedDB record of the viewer key. */
export interface StoredViewerKey {
  v: 1;
  /** The CryptoKeyPair, by structured clone (private key non-extractable). */
  kp: CryptoKeyPair;
  created: number;
}

/** The loaded identity. */
export interface ViewerIdentity {
  signer: WebCryptoSigner;
  /** `huk_…` text of the public key (what devices and grants name). */
  keyText: UserKeyText;
  created: number;
  /** True when this call generated the key. */
  fresh: boolean;
}

const KEY_ID = 'viewer';

/** Load the viewer key, or generate and store one on first run. */
export async function loadOrCreateViewerKey(db: Db, now: () => number = Date.now): Promise<ViewerIdentity> {
  const existing = await db.get<StoredViewerKey>('keys', KEY_ID);
  if (existing?.kp?.privateKey) return identity(existing, false);
  const kp = (await crypto.subtle.generateKey('Ed25519', false, ['sign', 'verify'])) as CryptoKeyPair;
  const rec: StoredViewerKey = { v: 1, kp, created: now() };
  try {
    await db.add('keys', rec, KEY_ID);
  } catch {
    // Another tab won the race: use its key, so one browser profile has one identity.
    const won = await db.get<StoredViewerKey>('keys', KEY_ID);
    if (won?.kp?.privateKey) return identity(won, false);
    throw new Error('could not store the viewer key in IndexedDB');
  }
  return identity(rec, true);
}

async function identity(rec: StoredViewerKey, fresh: boolean): Promise<ViewerIdentity> {
  const signer = await WebCryptoSigner.fromKeyPair(rec.kp);
  return { signer, keyText: encodeId('userKey', signer.publicKey), created: rec.created, fresh };
}
