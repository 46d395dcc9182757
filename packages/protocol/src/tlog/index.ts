/** The tamper-evident access log (threat model S9): RFC 9162 Merkle trees, C2SP checkpoints and signed notes. */
export * from './checkpoint.js';
export * from './cosignature.js';
export * from './entry.js';
export * from './merkle.js';
export * from './monitor.js';
export * from './note.js';
export * from './wire.js';
export * from './witness.js';
