/** Counters exposed as `server.metrics`. Plain numbers, mutated in place (no allocation per packet). */
export interface RelayMetrics {
  /** Datagrams/frames received from clients (UDP + TCP). */
  clientPacketsIn: number;
  /** Packets relayed client -> peer. */
  relayedToPeer: number;
  /** Packets relayed peer -> client. */
  relayedToClient: number;
  /** Payload bytes relayed in both directions. */
  relayedBytes: number;
  /** STUN requests handled. */
  stunRequests: number;
  /** Undecodable or malformed client input, dropped. */
  malformedDropped: number;
  /** Client packets above maxPacketSize, dropped. */
  oversizedDropped: number;
  /** ChannelData for an unknown allocation or unbound/expired channel, dropped. */
  channelDataDropped: number;
  /** Packets without a valid permission (either direction), dropped. */
  permissionDropped: number;
  /** Packets dropped by the per-allocation bandwidth bucket. */
  rateLimitedDropped: number;
  /** Packets dropped because a TCP client's send queue was full. */
  backpressureDropped: number;
  /** Peer addresses refused by the SSRF guard (403s and dropped indications). */
  forbiddenPeer: number;
  /** 401 responses sent. */
  unauthorized: number;
  /** 401s caused by an expired REST username. */
  expiredCredentials: number;
  /** 438 responses sent. */
  staleNonce: number;
  /** 486/508 quota refusals. */
  quotaRejected: number;
  /** Allocations created since start. */
  allocationsCreated: number;
  /** Allocations currently live. */
  allocationsActive: number;
  /** Allocations removed by expiry. */
  allocationsExpired: number;
  /** TCP/TLS connections currently open. */
  tcpConnections: number;
  /** Errors raised by sockets (logged nowhere, counted here). */
  socketErrors: number;
  /** Unexpected exceptions caught in handlers (should stay 0). */
  internalErrors: number;
}

/** Fresh zeroed counters. */
export function createMetrics(): RelayMetrics {
  return {
    clientPacketsIn: 0,
    relayedToPeer: 0,
    relayedToClient: 0,
    relayedBytes: 0,
    stunRequests: 0,
    malformedDropped: 0,
    oversizedDropped: 0,
    channelDataDropped: 0,
    permissionDropped: 0,
    rateLimitedDropped: 0,
    backpressureDropped: 0,
    forbiddenPeer: 0,
    unauthorized: 0,
    expiredCredentials: 0,
    staleNonce: 0,
    quotaRejected: 0,
    allocationsCreated: 0,
    allocationsActive: 0,
    allocationsExpired: 0,
    tcpConnections: 0,
    socketErrors: 0,
    internalErrors: 0,
  };
}
