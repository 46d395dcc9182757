/** Replies and small bodies of the server's JSON routes (the blob store, the log gossip). */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type HearthError, ProtocolError } from '@hearth/protocol';
import { httpStatus } from './http-status.js';

/** A JSON reply, never cached. */
export function sendJson(res: ServerResponse, status: number, v: unknown): void {
  const body = JSON.stringify(v);
  res
    .writeHead(status, {
      'content-type': 'application/json',
      'cache-control': 'no-store',
      'content-length': Buffer.byteLength(body),
    })
    .end(body);
}

/**
 * A refusal: `{code, message}` with the code's HTTP status. The request's body may not have been
 * read, so the connection is not kept for another; a reply already started is cut instead.
 */
export function sendError(res: ServerResponse, e: HearthError): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify({ code: e.code, message: e.message });
  res.writeHead(httpStatus(e.code), {
    'content-type': 'application/json',
    'cache-control': 'no-store',
    'content-length': Buffer.byteLength(body),
    connection: 'close',
  });
  res.end(body);
}

/** Read a body of at most `max` bytes (E_TOO_LARGE, from its declared length or as it comes). */
export async function readSmallBody(req: IncomingMessage, max: number): Promise<Buffer> {
  const tooLarge = () => new ProtocolError('E_TOO_LARGE', `request body larger than ${max} bytes`);
  if (!(Number(req.headers['content-length'] ?? 0) <= max)) throw tooLarge();
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    n += c.length;
    if (n > max) throw tooLarge();
    chunks.push(c);
  }
  return Buffer.concat(chunks);
}
