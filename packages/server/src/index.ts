/** Hearth rendezvous server: key-authenticated WebSocket signaling, presence, SQLite store, serves the viewer, hosts the relay. */

export {
  type BlobMeta,
  type BlobQuery,
  type BlobStore,
  type BlobStoreUsage,
  FileBlobStore,
  type FileBlobStoreTestHooks,
} from './blob-store.js';
export { BLOBS_PREFIX, type BlobTestHooks, parseQuery } from './blobs-http.js';
export {
  ENV_KEYS,
  isLoopbackHost,
  loadServerConfig,
  resolveServerConfig,
  type ServerConfig,
  type ServerConfigInput,
  type TlsConfig,
} from './config.js';
export { CLOSE, FRAME_ERRORS } from './hub.js';
export {
  LOG_GOSSIP_PREFIX,
  LogGossipHttp,
  type LogGossipTestHooks,
  MAX_GOSSIP_DEVICES,
} from './log-gossip.js';
export {
  checkPushEndpoint,
  loadVapidKey,
  type PushGateway,
  type PushOutcome,
  type PushRequest,
  PushSender,
  pushAddressAllowed,
  VAPID_KEY_FILE,
  vapidAuthorization,
} from './push.js';
export { APP_HEADERS, type HearthServer, httpStatus, startServer } from './server.js';
export { Store } from './store.js';
