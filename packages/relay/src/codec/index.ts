/** Pure STUN/TURN codec: no node: imports, no I/O. */
export * from './address.js';
export * from './attributes.js';
export * from './channel-data.js';
export * from './constants.js';
export { crc32 } from './crc32.js';
export * from './errors.js';
export { nobleStunCrypto, type StunCrypto, timingSafeEqualBytes } from './hashes.js';
export * from './message.js';
