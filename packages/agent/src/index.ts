/** Hearth camera agent: device identity, pairing, ACL, ffmpeg capture, WebRTC (werift) fan-out. */
export { type Agent, type AgentEvent, type AgentOptions, type Logger, startAgent } from './agent.js';
export { deviceTimeZone, loadCamerasFile, loadTimeZone } from './config.js';
export {
  AccessLog,
  type AccessLogOptions,
  accessLogDir,
  aclLogEntries,
  DEFAULT_LOG_PAGE,
  idHashOf,
  keyHashOf,
  type LogSink,
} from './device/access-log.js';
export { loadAcl, saveAcl } from './device/acl-store.js';
export { type DeviceIdentity, loadOrCreateIdentity } from './device/identity.js';
export {
  INVITE_LIMITS,
  INVITES_FILE,
  type InviteCheck,
  type InviteLimits,
  type InviteLogSink,
  InviteStore,
  type InviteStoreOptions,
} from './device/invites.js';
export {
  loadPairingState,
  PAIRING_STATE_FILE,
  type PairedViewer,
  type PairingEvent,
  PairingHost,
  type PairingHostOptions,
  type PairingInfo,
  pairingStatePath,
} from './device/pairing-host.js';
export { RendezvousClient, type RendezvousClientOptions } from './device/rendezvous-client.js';
export { type FactoryResetOptions, type FactoryResetResult, factoryReset } from './device/reset.js';
export {
  type MediaBackend,
  type MediaSession,
  type SessionEvent,
  SessionManager,
} from './device/sessions.js';
export {
  BlobClient,
  type BlobSink,
  blobClientSink,
  EventPipeline,
  type EventPipelineOptions,
  type EventRecording,
  Outbox,
  type OutboxMeta,
  parseRetention,
  RETENTION_DEFAULTS,
  ReaderKeyStore,
  type RetentionConfig,
  UploadedIndex,
  Uploader,
} from './events/index.js';
export {
  DEFAULT_PUSH_COOLDOWN_MS,
  MAX_SUBS_PER_USER,
  type NotifyResult,
  PUSH_SUBS_FILE,
  type PushEvent,
  PushNotifier,
  type PushNotifierOptions,
  type PushSend,
  type PushTransport,
  rendezvousPushTransport,
} from './events/push.js';
export * from './media/index.js';
export {
  CAMERA_OFFLINE,
  createMediaBackend,
  type MediaBackendHandle,
  type MediaBackendOptions,
} from './media-backend.js';
