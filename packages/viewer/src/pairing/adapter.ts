/**
 * Adapter over the protocol package's viewer pairing machine (SPAKE2+): the one place that knows
 * its API, so the flow and the UI do not.
 */
import {
  type CryptoEnv,
  deviceIdFromKey,
  encodeId,
  HearthError,
  isId,
  type PairingMethod,
  type PairingStep,
  ProtocolError,
  parseLookupTag,
  parseManualCode,
  parseQrPayload,
  type Signer,
  ViewerPairing,
  type ViewerPairingResult,
} from '@hearth/protocol';

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

/** Loopback hosts, the only ones a plain-http pairing link is accepted for (local demos). */
function loopbackLink(link: string): boolean {
  try {
    const h = new URL(link).hostname;
    return h === 'localhost' || h === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(h);
  } catch {
    return false;
  }
}

function parseLink(link: string) {
  return parseQrPayload(link, { allowInsecure: loopbackLink(link) });
}

/** The protocol's SPAKE2+ viewer machine (RFC 9383) behind the flow's port. */
class ProtocolMachine implements PairingMachinePort {
  private readonly m: ViewerPairing;
  private failedCode: string | undefined;

  constructor(o: {
    deviceId: string;
    method: PairingMethod;
    secret: Uint8Array;
    signer: Signer;
    env: CryptoEnv;
  }) {
    this.m = new ViewerPairing({
      deviceId: o.deviceId,
      method: o.method,
      secret: o.secret,
      signer: o.signer,
      env: o.env,
      deviceIdMatches: (key) => deviceIdFromKey(key) === o.deviceId,
    });
    o.secret.fill(0);
  }

  private outcome(step: PairingStep<ViewerPairingResult>): PairingOutcome {
    if (step.result) {
      return {
        kind: 'done',
        deviceKey: encodeId('deviceKey', step.result.deviceKey),
        role: step.result.role,
      };
    }
    const m = step.send[0];
    return m ? { kind: 'send', m } : { kind: 'wait' };
  }

  private failed(e: unknown): PairingOutcome {
    const code = e instanceof HearthError ? e.code : 'E_INTERNAL';
    this.failedCode = code;
    return { kind: 'failed', code };
  }

  async start(): Promise<PairingOutcome> {
    try {
      return this.outcome(await this.m.start());
    } catch (e) {
      return this.failed(e);
    }
  }

  async receive(msg: { t: string; [k: string]: unknown }): Promise<PairingOutcome> {
    if (this.failedCode) return { kind: 'failed', code: this.failedCode };
    try {
      return this.outcome(await this.m.receive(msg as Parameters<ViewerPairing['receive']>[0]));
    } catch (e) {
      return this.failed(e);
    }
  }

  dispose(): void {
    this.m.abort();
  }
}

/** The real adapter: the protocol package's parsers and its ViewerPairing machine. */
export const defaultPairingAdapter: PairingAdapter = {
  parseLink(link) {
    const p = parseLink(link);
    if (!isId('deviceId', p.deviceId))
      throw new ProtocolError('E_SCHEMA', 'pairing link: malformed device ID');
    p.secret.fill(0);
    return { deviceId: p.deviceId };
  },
  lookupTag(code) {
    // Full check (length, alphabet, check character) before anything is sent: a typo costs no attempt.
    const c = parseManualCode(code);
    c.secret.fill(0);
    return parseLookupTag(c.tag);
  },
  create(o) {
    if (o.link) {
      const p = parseLink(o.link);
      if (p.deviceId !== o.deviceId) throw new ProtocolError('E_SCHEMA', 'pairing link: device ID mismatch');
      return new ProtocolMachine({
        deviceId: o.deviceId,
        method: 'qr',
        secret: p.secret,
        signer: o.signer,
        env: o.env,
      });
    }
    if (o.code) {
      const c = parseManualCode(o.code);
      return new ProtocolMachine({
        deviceId: o.deviceId,
        method: 'code',
        secret: c.secret,
        signer: o.signer,
        env: o.env,
      });
    }
    throw new ProtocolError('E_SCHEMA', 'pairing needs a link or a code');
  },
};
