/** Shows a pairing window on the terminal: the QR (scan with a phone camera) and the manual code. */
import qrcode from 'qrcode-terminal';

/** Render the pairing QR and manual code as text. */
export function renderPairing(
  info: { qrUrl: string; manualCode: string; expiresAt: number },
  out: NodeJS.WritableStream = process.stdout,
): void {
  qrcode.generate(info.qrUrl, { small: true }, (qr: string) => {
    const mins = Math.max(1, Math.round((info.expiresAt - Date.now()) / 60_000));
    out.write(`\nScan to pair (opens the viewer):\n${qr}\n`);
    out.write(`  or open this link on this computer:    ${info.qrUrl}\n`);
    out.write(`  or open the viewer and type the code:  ${info.manualCode}\n`);
    out.write(`  The pairing window closes in ${mins} min or after the first pairing.\n\n`);
  });
}
