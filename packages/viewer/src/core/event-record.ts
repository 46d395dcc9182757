/**
 * The event-index record (the plaintext of a `kind: 'event'` sealed blob): protocol's decoder,
 * re-exported for the viewer's screens (size limit first, strict schema, ProtocolError only).
 */
export {
  decodeEventRecord,
  type EventRecord,
  type EventType,
  MAX_EVENT_RECORD_BYTES,
} from '@hearth/protocol';
