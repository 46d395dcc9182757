/**
 * `@hearth/relay`: Hearth's built-in STUN (RFC 8489) / TURN (RFC 8656) relay.
 *
 * - `codec`: pure STUN/TURN message and ChannelData codec (no node: imports).
 * - `RelayServer`: Node UDP/TCP/TLS relay with REST credentials, quotas and an SSRF guard.
 * - credentials: coturn-compatible TURN REST API usernames/passwords.
 */

export {
  CredentialError,
  RELAY_ERROR_CODES,
  RelayConfigError,
  RelayError,
  type RelayErrorCode,
  StunDecodeError,
  StunEncodeError,
} from './codec/errors.js';
export * as codec from './codec/index.js';
export {
  type IssueOptions,
  issueTurnCredentials,
  parseRestUsername,
  type RestUsername,
  restPassword,
  type TurnCredentials,
  type VerifyResult,
  verifyTurnCredentials,
} from './credentials.js';
export { CHANNEL_LIFETIME_MS, PERMISSION_LIFETIME_MS } from './server/allocation.js';
export { createMetrics, type RelayMetrics } from './server/metrics.js';
export { nodeStunCrypto } from './server/node-crypto.js';
export { type Clock, type RelayServerOptions, resolveOptions, systemClock } from './server/options.js';
export { PeerGuard } from './server/peer-guard.js';
export { type RelayAddresses, RelayServer } from './server/relay-server.js';
