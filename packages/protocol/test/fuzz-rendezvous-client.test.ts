/**
 * Property test of the rendezvous client core against a hostile server: random sequences of server
 * frames (valid ones of every kind, mutated text, binary), socket closes, timers firing, sends and
 * nudges, in any order. Whatever the server does:
 *
 * - nothing escapes the core as an exception;
 * - routed frames (`recv`, `presence`, `pair/found`, `alert`) reach the caller only while ready;
 * - on each connection the client sends at most one `auth`, nothing else before `ready`, and
 *   nothing at all on a connection it has given up on;
 * - at most one connection is alive at a time;
 * - after stop(), no timer is left and no new connection is opened.
 *
 * HEARTH_FUZZ_RUNS scales the number of sequences (default here: 300).
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import fc from 'fast-check';
import { fixedEnv } from '../src/crypto/env.js';
import { WebCryptoSigner } from '../src/crypto/primitives.js';
import { deviceIdFromKey, encodeId } from '../src/ids.js';
import { decodeClientFrame } from '../src/rendezvous.js';
import {
  RendezvousCore,
  type RendezvousSocketEvents,
  type RendezvousTimers,
} from '../src/rendezvous-client.js';
import { editsArb, mutate } from './fuzz-helpers.js';

const RUNS = Math.max(20, Math.floor(Number(process.env.HEARTH_FUZZ_RUNS ?? 100_000) / 333));

let signer: WebCryptoSigner;
let dev: string;
let user: string;
before(async () => {
  signer = await WebCryptoSigner.generate(true);
  dev = deviceIdFromKey(signer.publicKey);
  user = encodeId('userKey', signer.publicKey);
});

const ch = 'A'.repeat(43);
const srv = encodeId('serverKey', new Uint8Array(32).fill(5));
const frames = () => [
  { t: 'hello', v: 1, srv, ch },
  { t: 'ready', id: dev, ice: [] },
  { t: 'ready', id: user, ice: [{ urls: ['turn:127.0.0.1:3478'], username: 'u', credential: 'c' }] },
  { t: 'recv', from: user, m: { t: 'cameras' } },
  { t: 'presence', d: dev, online: true },
  { t: 'pair/found', tag: 'ABCD', d: null },
  { t: 'alert', code: 'E_IMPOSTOR', count: 2 },
  { t: 'error', code: 'E_OFFLINE', msg: 'x', ref: 'r1' },
  { t: 'pong' },
];

type Op =
  | { k: 'frame'; i: number }
  | { k: 'mutated'; i: number; edits: [number, number, number][] }
  | { k: 'binary' }
  | { k: 'close'; code: number }
  | { k: 'timer'; i: number }
  | { k: 'send' }
  | { k: 'nudge' }
  | { k: 'settle' }
  /** hello, wait for the auth, ready: a full handshake (so that sequences reach the ready state). */
  | { k: 'handshake' };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ k: fc.constant('frame' as const), i: fc.nat(8) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('mutated' as const), i: fc.nat(8), edits: editsArb }) },
  { weight: 1, arbitrary: fc.constant({ k: 'binary' as const }) },
  {
    weight: 1,
    arbitrary: fc.record({ k: fc.constant('close' as const), code: fc.constantFrom(1000, 1006, 4002, 4003) }),
  },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('timer' as const), i: fc.nat(5) }) },
  { weight: 1, arbitrary: fc.constant({ k: 'send' as const }) },
  { weight: 1, arbitrary: fc.constant({ k: 'nudge' as const }) },
  { weight: 3, arbitrary: fc.constant({ k: 'settle' as const }) },
  { weight: 3, arbitrary: fc.constant({ k: 'handshake' as const }) },
);

/** Sequences that reached `ready` (the property must exercise the ready state, not only the handshake). */
let readies = 0;

const settle = async () => {
  for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
};

/** Play `ops` against a core; returns the invariant violations. `broken` plants a bug (control). */
async function play(ops: Op[], asDevice: boolean, broken = false): Promise<string[]> {
  const pending = new Map<number, () => void>();
  let seq = 0;
  const timers: RendezvousTimers = {
    set(fn) {
      pending.set(++seq, fn);
      return seq;
    },
    clear: (h) => void pending.delete(h as number),
  };
  interface S {
    ev: RendezvousSocketEvents;
    sent: string[];
    givenUp: boolean;
    gone: boolean;
    readyAt: number | undefined;
  }
  const socks: S[] = [];
  const violations: string[] = [];
  const core = new RendezvousCore({
    socket: (ev) => {
      const alive = socks.filter((s) => !s.givenUp && !s.gone);
      if (alive.length) violations.push(`a new connection while ${alive.length} is alive`);
      const s: S = { ev, sent: [], givenUp: false, gone: false, readyAt: undefined };
      socks.push(s);
      return {
        send(text) {
          if (s.givenUp || s.gone) violations.push('sent on a connection given up on');
          s.sent.push(text);
          return true;
        },
        close() {
          s.givenUp = true;
        },
      };
    },
    signer,
    role: asDevice ? 'device' : 'viewer',
    env: fixedEnv(9),
    timers,
  });
  for (const k of ['recv', 'presence', 'pair/found', 'alert'] as const)
    core.on(k, () => {
      if (core.status !== 'ready') violations.push(`${k} emitted while ${core.status}`);
    });
  if (broken) {
    // The planted bug: a routed frame is handed to the caller whatever the state.
    const c = core as unknown as {
      emit(k: string, e: unknown): void;
      onFrame(l: unknown, f: { t: string }): Promise<void>;
    };
    const real = c.onFrame.bind(core);
    c.onFrame = async (l, f) => (f.t === 'recv' ? c.emit('recv', f) : real(l, f));
  }
  core.on('ready', () => {
    const s = socks.at(-1);
    if (s) s.readyAt = s.sent.length;
    readies++;
  });
  core.start();
  const cur = () => socks.at(-1);
  for (const op of ops) {
    const s = cur();
    switch (op.k) {
      case 'frame':
        s?.ev.text(JSON.stringify(frames()[op.i]));
        break;
      case 'mutated':
        s?.ev.text(mutate(JSON.stringify(frames()[op.i]), op.edits));
        break;
      case 'binary':
        s?.ev.binary();
        break;
      case 'close':
        if (s) {
          s.gone = true;
          s.ev.closed(op.code, 'x');
        }
        break;
      case 'timer': {
        const ids = [...pending.keys()];
        const id = ids[op.i % Math.max(1, ids.length)];
        if (id !== undefined) {
          const fn = pending.get(id)!;
          pending.delete(id);
          fn();
        }
        break;
      }
      case 'send':
        core.send({ t: 'ping' });
        break;
      case 'nudge':
        core.nudge();
        break;
      case 'settle':
        await settle();
        break;
      case 'handshake':
        if (!s) break;
        s.ev.text(JSON.stringify(frames()[0]));
        for (let i = 0; i < 500 && core.status === 'authenticating' && !s.sent.length; i++)
          await new Promise((r) => setImmediate(r));
        s.ev.text(JSON.stringify(frames()[asDevice ? 1 : 2]));
        break;
    }
  }
  await settle();
  for (const [i, s] of socks.entries()) {
    const sent = s.sent.map((t) => decodeClientFrame(t).t);
    const auths = sent.filter((t) => t === 'auth').length;
    if (auths > 1) violations.push(`connection ${i}: ${auths} auth frames`);
    const early = sent.slice(0, s.readyAt ?? sent.length).filter((t) => t !== 'auth');
    if (early.length) violations.push(`connection ${i}: ${early.join(',')} before ready`);
  }
  core.stop();
  const opened = socks.length;
  await settle();
  if (pending.size) violations.push(`${pending.size} timers left after stop`);
  core.nudge();
  if (socks.length !== opened) violations.push('a connection opened after stop');
  return violations;
}

describe('RendezvousCore against a hostile server (property)', () => {
  it(`keeps its invariants over ${RUNS} random sequences`, async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(opArb, { minLength: 1, maxLength: 40 }),
        fc.boolean(),
        async (ops, asDevice) => {
          assert.deepEqual(await play(ops, asDevice), []);
        },
      ),
      { numRuns: RUNS },
    );
    assert.ok(readies > RUNS / 4, `enough sequences reach ready (${readies} of ${RUNS})`);
  });

  it('control: the same check catches a core that hands over recv before ready', async () => {
    const script: Op[] = [{ k: 'frame', i: 3 }];
    assert.deepEqual(await play(script, false), []);
    assert.deepEqual(await play(script, false, true), ['recv emitted while connecting']);
  });
});
