/** Sealed blobs: clips, snapshots and event records encrypted on the device (docs/protocol.md). */
export * from './blob.js';
export * from './event-record.js';
export * from './fragments.js';
export * from './header.js';
export * from './meta.js';
export * from './reader-key.js';
export * from './stream.js';
