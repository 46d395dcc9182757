/**
 * Pairing, as the viewer runs it over the rendezvous (the PAKE itself is the protocol package's
 * viewer state machine; this file only moves its messages and turns outcomes into UI reasons).
 *
 * ```
 * manual code:  pair/lookup {tag} ──▶ server ──▶ pair/found {tag, d}     (d null: nobody waiting)
 * then, to d:   send {to: d, m: pair/start}        ──▶ device
 *               recv {from: d, m: pair/challenge}  ◀── device
 *               send {to: d, m: pair/confirm}      ──▶ device
 *               recv {from: d, m: pair/done}       ◀── device   (device key, our role)
 * ```
 *
 * Messages from any other sender are ignored. A server `error` frame carrying the `ref` of one
 * of our sends means the device could not be reached. The device key the PAKE delivers must hash
 * to the device ID we set out to pair with, or nothing is saved.
 */
import { type CryptoEnv, type ErrorCode, isErrorCode, type Signer, viewerAction } from '@hearth/protocol';
import { checkPin } from '../store/devices.js';
import type { PairFailureReason } from '../ui/text.js';
import { defaultPairingAdapter, type PairingAdapter, type PairingOutcome } from './adapter.js';

/** What the user gave us. */
export type PairInput = { kind: 'link'; link: string } | { kind: 'code'; code: string };
/** Progress steps shown to the user. */
export type PairStep = 'lookup' | 'contacting' | 'verifying' | 'saving';

/** The registered code of a pairing failure given only its reason. */
const REASON_CODES: { readonly [R in PairFailureReason]: ErrorCode } = {
  'bad-input': 'E_DECODE',
  'not-found': 'E_NOT_FOUND',
  offline: 'E_OFFLINE',
  'wrong-code': 'E_BAD_CONFIRMATION',
  locked: 'E_LOCKED',
  wait: 'E_RATE_LIMITED',
  closed: 'E_PAIRING_CLOSED',
  timeout: 'E_TIMEOUT',
  attack: 'E_BAD_BINDING',
  'no-server': 'E_NO_SERVER',
  failed: 'E_INTERNAL',
};

/**
 * A pairing that did not complete, with the reason the UI shows. It has the shape of the error
 * registry's errors: `code` is always a registered code (the one reported, or the reason's own);
 * the message does not repeat it.
 */
export class PairingFailure extends Error {
  readonly reason: PairFailureReason;
  readonly attemptsLeft: number | undefined;
  readonly code: ErrorCode;
  constructor(
    reason: PairFailureReason,
    o: { attemptsLeft?: number | undefined; code?: string | undefined } = {},
  ) {
    super(`pairing failed: ${reason}`);
    this.name = 'PairingFailure';
    this.reason = reason;
    this.attemptsLeft = o.attemptsLeft;
    // A code that is not registered can only come from a local bug (pair/error frames carry
    // registered codes only): it is reported as one.
    this.code = o.code === undefined ? REASON_CODES[reason] : isErrorCode(o.code) ? o.code : 'E_INTERNAL';
  }
}

/** The rendezvous operations pairing needs. */
export interface PairSignaling {
  readonly ready: boolean;
  send(frame: { t: 'pair/lookup'; tag: string }): boolean;
  sendTo(to: string, m: unknown): string | undefined;
}

/** The result to pin. */
export interface PairResult {
  deviceId: string;
  deviceKey: string;
  role: string;
}

/** A running pairing: feed it frames; await `result`. */
export interface PairingRun {
  readonly result: Promise<PairResult>;
  onFound(f: { tag: string; d: string | null }): void;
  onMessage(from: string, m: { t: string; [k: string]: unknown }): void;
  /** Returns true when the error frame belonged to this run. */
  onServerError(f: { code: string; ref?: string | undefined }): boolean;
  cancel(): void;
}

/** Options of {@link startPairing}. */
export interface PairingOptions {
  input: PairInput;
  signaling: PairSignaling;
  signer: Signer;
  env: CryptoEnv;
  onStep?(s: PairStep): void;
  /** Longest wait for any single reply (ms). Default 20 s. */
  stepTimeoutMs?: number;
  adapter?: PairingAdapter;
}

/**
 * Map a device/server error code to a UI reason: a few pairing codes have their own sentence;
 * every other code is sorted by its action in the error registry (protocol `errors.ts`).
 */
export function reasonForCode(code: string): PairFailureReason {
  switch (code) {
    case 'E_BAD_CONFIRMATION':
      return 'wrong-code';
    case 'E_LOCKED':
      return 'locked';
    case 'E_RATE_LIMITED':
      return 'wait';
    case 'E_PAIRING_CLOSED':
      return 'closed';
    case 'E_TIMEOUT':
      return 'timeout';
  }
  switch (viewerAction(code)) {
    case 'attack':
      return 'attack';
    case 'offline':
      return 'offline';
    default:
      return 'failed';
  }
}

/** Start pairing. */
export function startPairing(o: PairingOptions): PairingRun {
  const adapter = o.adapter ?? defaultPairingAdapter;
  let settle: { resolve(r: PairResult): void; reject(e: PairingFailure): void } | undefined;
  const result = new Promise<PairResult>((resolve, reject) => {
    settle = { resolve, reject };
  });
  let done = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let tag: string | undefined;
  let deviceId: string | undefined;
  const refs = new Set<string>();
  let machine: ReturnType<PairingAdapter['create']> | undefined;
  let queue = Promise.resolve();

  const finish = (r: PairResult | PairingFailure) => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    machine?.dispose?.();
    if (r instanceof PairingFailure) settle?.reject(r);
    else settle?.resolve(r);
  };
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => finish(new PairingFailure('timeout')), o.stepTimeoutMs ?? 20_000);
  };
  const sendToDevice = (m: unknown) => {
    if (!deviceId) return;
    const ref = o.signaling.sendTo(deviceId, m);
    if (!ref) return finish(new PairingFailure('no-server'));
    refs.add(ref);
  };
  const handle = (out: PairingOutcome) => {
    if (out.kind === 'send') {
      sendToDevice(out.m);
      arm();
    } else if (out.kind === 'done') {
      if (!deviceId || !checkPin(deviceId, out.deviceKey))
        return finish(new PairingFailure('attack', { code: 'E_BAD_BINDING' }));
      finish({ deviceId, deviceKey: out.deviceKey, role: out.role });
    } else if (out.kind === 'failed') {
      finish(new PairingFailure(reasonForCode(out.code), { attemptsLeft: out.attemptsLeft, code: out.code }));
    }
  };
  const begin = async (id: string, secret: { link?: string; code?: string }) => {
    deviceId = id;
    o.onStep?.('contacting');
    machine = adapter.create({ deviceId: id, ...secret, signer: o.signer, env: o.env });
    handle(await machine.start());
  };
  const guard = (f: () => Promise<void>) => {
    queue = queue.then(f).catch((err: unknown) => {
      const code = (err as { code?: string }).code;
      finish(
        err instanceof PairingFailure
          ? err
          : new PairingFailure(code ? reasonForCode(code) : 'failed', { code }),
      );
    });
  };

  guard(async () => {
    if (o.input.kind === 'link') {
      let parsed: { deviceId: string };
      try {
        parsed = adapter.parseLink(o.input.link);
      } catch {
        throw new PairingFailure('bad-input');
      }
      await begin(parsed.deviceId, { link: o.input.link });
    } else {
      try {
        tag = adapter.lookupTag(o.input.code);
      } catch {
        throw new PairingFailure('bad-input');
      }
      o.onStep?.('lookup');
      if (!o.signaling.send({ t: 'pair/lookup', tag })) throw new PairingFailure('no-server');
      arm();
    }
  });

  return {
    result,
    onFound(f) {
      if (done || !tag || f.tag !== tag || deviceId) return;
      if (!f.d) return finish(new PairingFailure('not-found'));
      const d = f.d;
      const code = o.input.kind === 'code' ? o.input.code : '';
      guard(() => begin(d, { code }));
    },
    onMessage(from, m) {
      if (done || !machine || from !== deviceId) return;
      o.onStep?.('verifying');
      const mm = machine;
      guard(async () => handle(await mm.receive(m)));
    },
    onServerError(f) {
      // The server throttles lookups per address (review R7): its refusal carries no ref.
      if (!done && !f.ref && tag && !deviceId && f.code === 'E_RATE_LIMITED') {
        finish(new PairingFailure('wait', { code: f.code }));
        return true;
      }
      if (done || !f.ref || !refs.has(f.ref)) return false;
      finish(new PairingFailure('offline', { code: f.code }));
      return true;
    },
    cancel() {
      finish(new PairingFailure('failed', { code: 'E_CANCELLED' }));
    },
  };
}
