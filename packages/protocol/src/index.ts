/**
 * @hearth/protocol — the pure core shared by the agent, the server and the browser viewer.
 * No I/O and no Node imports: this package compiles with `"types": []`.
 */

export * from './blobs.js';
export * from './bucket.js';
export * from './bytes.js';
export * from './canonical.js';
export * from './channel.js';
export * from './clip/index.js';
export * from './crypto/env.js';
export * from './crypto/primitives.js';
export * from './envelope.js';
export * from './errors.js';
export * from './grants.js';
export * from './ids.js';
export * from './invite.js';
export * from './messages.js';
export * from './pairing/index.js';
export * from './push-payload.js';
export * from './rendezvous.js';
export * from './rendezvous-client.js';
export * from './replay.js';
export * from './retry.js';
export * from './sdp.js';
export * from './session.js';
export * from './still.js';
export * from './tlog/index.js';
export * from './webpush.js';
