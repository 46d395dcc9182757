/**
 * The device's persisted pairing state (the agent's `pairing.json`): the {@link PairingGuard}'s
 * counters, window times and owner flag, so that a restart (or a crash an attacker provokes) does not
 * refill the attempt budget (threat model S2, F10). No secret is in it: the window's secrets are never
 * written down.
 *
 * The file is local but still parsed as hostile input: size limit, schema, typed errors (fuzzed in
 * test/pairing/fuzz.test.ts). Derived fields of a {@link PairingGuardSnapshot} (`remaining`,
 * `locked`, `retryAt`) may be present and are ignored; the guard recomputes them.
 */
import { z } from 'zod';
import { ProtocolError } from '../errors.js';
import type { PairingGuardSnapshot } from './guard.js';
import { parseJsonLimited } from './messages.js';

/** Largest pairing state file accepted, in bytes (a snapshot is about 400). */
export const MAX_PAIRING_STATE_BYTES = 4096;

const count = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);

const methodCountersSchema = z.looseObject({
  attempts: count,
  failures: count,
  lastAttemptAt: count,
});

/** Schema of the persisted pairing state. Unknown fields are kept (older and newer agents). */
export const pairingStateSchema = z.looseObject({
  open: z.boolean(),
  openedAt: count,
  closesAt: count,
  closeReason: z.enum(['never-opened', 'expired', 'paired', 'closed']).optional(),
  role: z.enum(['owner', 'member']),
  hasOwner: z.boolean(),
  paired: count,
  methods: z.looseObject({ qr: methodCountersSchema, code: methodCountersSchema }),
});

/** What {@link PairingGuard} restores from: the persisted part of its snapshot. */
export type PairingState = z.infer<typeof pairingStateSchema>;

/** Decode a pairing state file. Throws ProtocolError (E_TOO_LARGE, E_DECODE, E_SCHEMA). */
export function decodePairingState(input: Uint8Array | string): PairingState {
  const value = parseJsonLimited(input, MAX_PAIRING_STATE_BYTES, 'pairing state');
  const r = pairingStateSchema.safeParse(value);
  if (!r.success) {
    // Name the path only: zod messages may quote received values.
    const path = r.error.issues[0]?.path.map(String).join('.') || '(root)';
    throw new ProtocolError('E_SCHEMA', `pairing state: invalid field ${path.slice(0, 40)}`);
  }
  return r.data;
}

/** Encode a guard snapshot as the pairing state file's text. */
export function encodePairingState(s: PairingGuardSnapshot): string {
  return JSON.stringify(s);
}
