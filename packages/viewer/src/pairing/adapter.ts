/**
 * Adapter over the protocol package's viewer pairing machine (SPAKE2+): the one place that knows
 * its API, so the flow and the UI do not.
 */
import { type CryptoEnv, isId, ProtocolError, type Signer } from '@hearth/protocol';

/** What the machine asks the flow to do next. */
export type PairingOutcome =
  | { kind: 'send'; m: unknown }
  | { kind: 'wait' }
  | { kind: 'done'; deviceKey: string; role: string }
  | { kind: 'failed'; code: string; attemptsLeft?: number };

/** One viewer-side pairing run. */
export interface PairingMachinePort {
  start(): Promise<PairingOutcome>;
  receive(m: { t: string; [k: string]: unknown }): Promise<PairingOutcome>;
  dispose?(): void;
}

/** Parsers and the machine factory. */
export interface PairingAdapter {
  /** Parse a QR link; throws on anything malformed. */
  parseLink(link: string): { deviceId: string };
  /** The lookup tag of a manual code; throws on anything malformed. */
  lookupTag(code: string): string;
  create(o: {
    deviceId: string;
    link?: string;
    code?: string;
    signer: Signer;
    env: CryptoEnv;
  }): PairingMachinePort;
}

/**
 * Placeholder until `@hearth/protocol`'s `pairing/` module lands: parses the documented link and
 * code formats (`/pair#v=1&d=<deviceId>&s=<secret>`, `XXXX-XXXX-XXXX` with a 4-character lookup
 * tag) so lookups and routing work, and refuses to run the PAKE (E_UNSUPPORTED). Replace the three
 * functions with the module's parsers and its ViewerPairing machine.
 */
export const defaultPairingAdapter: PairingAdapter = {
  parseLink(link) {
    const u = new URL(link);
    const p = new URLSearchParams(u.hash.replace(/^#/, ''));
    const d = p.get('d');
    if (
      p.get('v') !== '1' ||
      !d ||
      !isId('deviceId', d) ||
      !/^[A-Za-z0-9_-]{16,128}$/.test(p.get('s') ?? '')
    ) {
      throw new ProtocolError('E_SCHEMA', 'pairing link');
    }
    return { deviceId: d };
  },
  lookupTag(code) {
    if (!/^[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}$/.test(code))
      throw new ProtocolError('E_SCHEMA', 'manual code');
    return code.slice(0, 4);
  },
  create() {
    throw new ProtocolError('E_UNSUPPORTED', 'the pairing machine is not available in this build');
  },
};
