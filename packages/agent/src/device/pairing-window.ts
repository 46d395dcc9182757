/**
 * The pairing window's secrets and what the device shows while it is open: the QR payload, the manual
 * code, their SPAKE2+ verifier records (w0, L) and the manual code's lookup tag.
 *
 * - The secrets live only as the display strings of {@link PairingInfo} (needed to show them again);
 *   the secret byte arrays are wiped as soon as the records are derived, and {@link PairingWindow.wipe}
 *   zeroes the records when the window closes. Nothing here is logged, persisted or sent anywhere
 *   (the lookup tag is not secret: the rendezvous routes the manual code's pairing by it).
 * - When the window opens, how long it lasts and how many attempts it allows is the
 *   {@link PairingGuard}'s business (protocol); this module only draws and holds the secrets.
 */
import {
  type CryptoEnv,
  createPairingRecord,
  encodeManualCode,
  encodeQrPayload,
  generateManualCode,
  generateQrSecret,
  type PairingMethod,
  type VerifierRecord,
} from '@hearth/protocol';

/** What the device shows while its pairing window is open. */
export interface PairingInfo {
  /** QR payload: `https://<server>/pair#v=1&d=<deviceId>&s=<secret>` (http only for a loopback server). */
  qrUrl: string;
  /** Manual code `XXXX-XXXX-XXXXX` (lookup tag, 40-bit secret, check character). */
  manualCode: string;
  /** When the window closes (ms since epoch). */
  expiresAt: number;
}

/** What drawing a window's secrets needs. */
export interface WindowSecretsOptions {
  /** Device ID text (`hdid_…`). */
  deviceId: string;
  env: CryptoEnv;
  /** Rendezvous server base URL; its host goes into the QR payload. */
  serverUrl: string;
  /** PBKDF2 iterations (tests only: the viewer must use the same). Default the protocol's. */
  iterations?: number;
}

/** A freshly drawn manual code: its verifier record, display form and lookup tag. */
export interface DrawnCode {
  record: VerifierRecord;
  manualCode: string;
  tag: string;
}

/** A fresh manual code (the secret is wiped once its record is derived). */
export async function drawManualCode(o: WindowSecretsOptions): Promise<DrawnCode> {
  const code = generateManualCode(o.env);
  try {
    const record = await createPairingRecord(o.deviceId, 'code', code.secret, o.iterations);
    return { record, manualCode: encodeManualCode(code), tag: code.tag };
  } finally {
    code.secret.fill(0);
  }
}

/** Zero a verifier record. */
export function wipeRecord(r: VerifierRecord | undefined): void {
  r?.w0.fill(0);
  r?.L.fill(0);
}

/** The secrets of one open window. */
export class PairingWindow {
  /**
   * The verifier records, by method. Shared with the window's DevicePairing sessions: a renewed
   * manual code replaces `code` in place.
   */
  readonly records: Partial<Record<PairingMethod, VerifierRecord>>;
  private shown: PairingInfo;
  private lookupTag: string;

  private constructor(qr: VerifierRecord, qrUrl: string, code: DrawnCode) {
    this.records = { qr, code: code.record };
    this.shown = { qrUrl, manualCode: code.manualCode, expiresAt: 0 };
    this.lookupTag = code.tag;
  }

  /**
   * Draw a window's secrets (QR secret and manual code, in parallel: PBKDF2 is slow). `closesAt` is
   * asked afterwards: undefined means the window closed meanwhile, and the secrets are wiped.
   */
  static async open(
    o: WindowSecretsOptions,
    closesAt: () => number | undefined,
  ): Promise<PairingWindow | undefined> {
    const qr = generateQrSecret(o.env);
    let qrRec: VerifierRecord;
    let code: DrawnCode;
    let qrUrl: string;
    try {
      [qrRec, code] = await Promise.all([
        createPairingRecord(o.deviceId, 'qr', qr, o.iterations),
        drawManualCode(o),
      ]);
      const u = new URL(o.serverUrl);
      qrUrl = encodeQrPayload(
        { server: u.host, deviceId: o.deviceId, secret: qr },
        { allowInsecure: u.protocol === 'http:' },
      );
    } finally {
      qr.fill(0);
    }
    const at = closesAt();
    if (at === undefined) {
      wipeRecord(qrRec);
      wipeRecord(code.record);
      return undefined;
    }
    const w = new PairingWindow(qrRec, qrUrl, code);
    w.shown.expiresAt = at;
    return w;
  }

  /** What to show (a copy). */
  get info(): PairingInfo {
    return { ...this.shown };
  }

  /** The manual code's lookup tag, registered at the rendezvous while the window is open. */
  get tag(): string {
    return this.lookupTag;
  }

  /** Replace the manual code (the server refused its tag): the old record is wiped. */
  replaceCode(code: DrawnCode): void {
    wipeRecord(this.records.code);
    this.records.code = code.record;
    this.lookupTag = code.tag;
    this.shown = { ...this.shown, manualCode: code.manualCode };
  }

  /** Zero every record (the window closed). */
  wipe(): void {
    wipeRecord(this.records.qr);
    wipeRecord(this.records.code);
  }
}
