/**
 * @hearth/node: what every Hearth process on Node shares (the agent and the server).
 *
 * - Private files: atomic, fsynced writes with mode 0600; loose permissions refused.
 * - The key file format of Ed25519 identities (PKCS#8 PEM), with the older formats migrated.
 * - The logger type.
 * - The WebSocket client with certificate pinning, and a `fetch` that pins the same way.
 * - The sealed-blob chunk AEAD on node:crypto (`nodeChunkAead`).
 */
export { nodeChunkAead } from './chunk-aead.js';
export {
  decodeKeyFile,
  encodeKeyFile,
  type KeyFileFormat,
  type LoadedKey,
  loadOrCreateKey,
} from './key-file.js';
export { type Logger, silentLogger } from './logger.js';
export { type MinimalFetch, pinnedFetch } from './pinned-fetch.js';
export {
  ensurePrivateDir,
  loosePermissionsError,
  MAX_PRIVATE_FILE,
  nodeFileIo,
  type PrivateFileIo,
  readPrivateFile,
  writePrivateFile,
} from './private-file.js';
export { CertificatePinError, normalizeFingerprint, type OpenWebSocketOptions, openWebSocket } from './ws.js';
