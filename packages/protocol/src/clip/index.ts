/** Sealed blobs: clips, snapshots and thumbnails encrypted on the device (docs/protocol.md). */
export * from './blob.js';
export * from './event-record.js';
export * from './header.js';
export * from './reader-key.js';
export * from './stream.js';
