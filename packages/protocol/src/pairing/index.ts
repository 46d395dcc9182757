/** Pairing: SPAKE2+ (RFC 9383), setup-secret formats, wire messages, guard and state machines. */

export * from './fingerprint.js';
export * from './guard.js';
export * from './messages.js';
export * from './pairing.js';
export * from './setup-code.js';
export * from './spake2plus.js';
export * from './state.js';
