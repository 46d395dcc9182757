/**
 * Shows a pairing window: the QR (scan with a phone camera), the link and the manual code.
 *
 * They are secrets of the pairing window, so they go to a terminal only (review R9). Under systemd,
 * Docker or any pipe, stdout is a log: there the agent writes them to `pairing-secret.json` in its
 * data directory (mode 0600, removed when the window closes) and prints only that file's path, and
 * `hearth agent pairing` shows them again.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { readPrivateFile, writePrivateFile } from '@hearth/node';
import { deviceFingerprint, parseQrPayload } from '@hearth/protocol';
import qrcode from 'qrcode-terminal';

export interface PairingSecrets {
  qrUrl: string;
  manualCode: string;
  expiresAt: number;
}

/** Where an agent keeps its open window's secrets (0600). */
export const pairingSecretPath = (dataDir: string) => join(dataDir, 'pairing-secret.json');

/** The file's one shape (it is ours, but read back like any input). */
function isSecrets(v: unknown): v is PairingSecrets {
  const o = v as Record<string, unknown> | null;
  return (
    typeof o === 'object' &&
    o !== null &&
    Object.keys(o).length === 3 &&
    typeof o.qrUrl === 'string' &&
    o.qrUrl.length <= 2048 &&
    typeof o.manualCode === 'string' &&
    o.manualCode.length <= 64 &&
    Number.isSafeInteger(o.expiresAt)
  );
}

/** The device's six-word fingerprint, which a viewer shows before pairing by link (R8); not secret. */
export function fingerprintOf(info: PairingSecrets): string {
  return deviceFingerprint(parseQrPayload(info.qrUrl, { allowInsecure: true }).deviceId);
}

/** Render the pairing QR, link and manual code as text. */
export function renderPairing(info: PairingSecrets, out: NodeJS.WritableStream = process.stdout): void {
  qrcode.generate(info.qrUrl, { small: true }, (qr: string) => {
    const mins = Math.max(1, Math.round((info.expiresAt - Date.now()) / 60_000));
    out.write(`\nScan to pair (opens the viewer):\n${qr}\n`);
    out.write(`  or open this link on this computer:    ${info.qrUrl}\n`);
    out.write(`  or open the viewer and type the code:  ${info.manualCode}\n`);
    out.write(`  A link shows this device's fingerprint before it pairs: ${fingerprintOf(info)}\n`);
    out.write(`  The pairing window closes in ${mins} min or after the first pairing.\n\n`);
  });
}

/**
 * A pairing window opened: keep its secrets in the 0600 file, and show them on `out` only if it is
 * a terminal; otherwise print where they are.
 */
export function showPairing(
  info: PairingSecrets,
  dataDir: string,
  out: NodeJS.WritableStream & { isTTY?: boolean } = process.stdout,
): void {
  const path = pairingSecretPath(dataDir);
  writePrivateFile(path, `${JSON.stringify(info)}\n`);
  if (out.isTTY) {
    renderPairing(info, out);
    return;
  }
  out.write(
    `\nA pairing window is open. Its QR link and code are secrets, so they are not printed here (not a terminal):\n` +
      `  they are in ${path} (mode 0600); show them with: hearth agent pairing --data-dir ${dataDir}\n` +
      `  This device's fingerprint (a pairing link shows it before it pairs): ${fingerprintOf(info)}\n\n`,
  );
}

/** The window closed: its secrets go. */
export function forgetPairing(dataDir: string): void {
  rmSync(pairingSecretPath(dataDir), { force: true });
}

/** The open window's secrets, or undefined when none is open (no file, or past its expiry). */
export function readPairing(dataDir: string, now = Date.now()): PairingSecrets | undefined {
  const bytes = readPrivateFile(pairingSecretPath(dataDir), 8192);
  if (!bytes) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.toString('utf8'));
  } catch {
    return undefined;
  }
  if (!isSecrets(parsed) || parsed.expiresAt <= now) return undefined;
  return parsed;
}
