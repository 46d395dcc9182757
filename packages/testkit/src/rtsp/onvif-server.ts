/**
 * A minimal ONVIF device + media SOAP service for the RTSP fixture, on loopback: GetCapabilities,
 * GetProfiles, GetStreamUri, SetSynchronizationPoint (and an unauthenticated GetSystemDateAndTime).
 * Every other call needs a WS-Security UsernameToken whose PasswordDigest
 * (base64(SHA1(nonce + created + password))) checks out, with a fresh nonce and a Created within
 * five minutes; otherwise the answer is HTTP 401 with a SOAP `ter:NotAuthorized` fault.
 *
 * It lists two profiles, a sub-stream first, so a client has to pick the profile whose stream URI is
 * the one it reads. SetSynchronizationPoint on the main profile calls `onSynchronizationPoint` (the
 * RTSP fixture forces a keyframe in its encoder). The matching here is deliberately simple (regular
 * expressions over a request of at most 64 KiB): it is a test fixture, not a parser under test.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface OnvifFixtureOptions {
  readonly user: string;
  readonly password: string;
  /** The RTSP URL of the main profile (the one a client should pick). */
  readonly rtspUrl: string;
  /** Called on an authenticated SetSynchronizationPoint for the main profile. */
  readonly onSynchronizationPoint: () => void;
}

export interface OnvifFixtureStats {
  /** Every POST. */
  readonly requests: number;
  /** Requests refused for authentication (bad digest, user, nonce reuse, stale Created, none). */
  readonly unauthorized: number;
  /** Authenticated SetSynchronizationPoint calls for the main profile (each forced a keyframe). */
  readonly synchronizationPoints: number;
  /** Authenticated SetSynchronizationPoint calls for another or an unknown profile. */
  readonly wrongProfile: number;
  readonly byAction: Readonly<Record<string, number>>;
}

export interface OnvifFixture {
  /** `http://127.0.0.1:PORT/onvif/device_service`. */
  readonly url: string;
  readonly mainProfile: string;
  stats(): OnvifFixtureStats;
  close(): Promise<void>;
}

const SOAP = 'http://www.w3.org/2003/05/soap-envelope';
const NS = `xmlns:s="${SOAP}" xmlns:tds="http://www.onvif.org/ver10/device/wsdl" xmlns:trt="http://www.onvif.org/ver10/media/wsdl" xmlns:tt="http://www.onvif.org/ver10/schema" xmlns:ter="http://www.onvif.org/ver10/error"`;
const MAIN = 'profile_main';
const SUB = 'profile_sub';

const envelope = (body: string): string =>
  `<?xml version="1.0" encoding="UTF-8"?><s:Envelope ${NS}><s:Body>${body}</s:Body></s:Envelope>`;

const fault = (sub: string, reason: string): string =>
  envelope(
    `<s:Fault><s:Code><s:Value>s:Sender</s:Value><s:Subcode><s:Value>${sub}</s:Value></s:Subcode></s:Code>` +
      `<s:Reason><s:Text xml:lang="en">${reason}</s:Text></s:Reason></s:Fault>`,
  );

const tag = (xml: string, local: string): RegExpExecArray | null =>
  new RegExp(`<(?:[A-Za-z_][\\w.-]*:)?${local}(\\s[^>]*)?>([^<]*)</(?:[A-Za-z_][\\w.-]*:)?${local}>`).exec(
    xml,
  );

export async function startOnvifFixture(o: OnvifFixtureOptions): Promise<OnvifFixture> {
  const seenNonces = new Set<string>();
  const byAction: Record<string, number> = {};
  let requests = 0;
  let unauthorized = 0;
  let synchronizationPoints = 0;
  let wrongProfile = 0;
  const sub = new URL(o.rtspUrl);
  sub.pathname = `${sub.pathname.replace(/\/+$/, '')}_sub`;

  const authenticated = (xml: string): boolean => {
    const user = tag(xml, 'Username')?.[2];
    const pw = tag(xml, 'Password');
    const nonce = tag(xml, 'Nonce')?.[2];
    const created = tag(xml, 'Created')?.[2];
    if (user === undefined || !pw || nonce === undefined || created === undefined) return false;
    if (!/Type="[^"]*#PasswordDigest"/.test(pw[1] ?? '')) return false;
    const t = Date.parse(created);
    if (!Number.isFinite(t) || Math.abs(Date.now() - t) > 5 * 60_000) return false;
    if (seenNonces.has(nonce)) return false;
    const want = createHash('sha1')
      .update(Buffer.concat([Buffer.from(nonce, 'base64'), Buffer.from(created), Buffer.from(o.password)]))
      .digest();
    const got = Buffer.from(pw[2] ?? '', 'base64');
    const userOk =
      Buffer.byteLength(user) === Buffer.byteLength(o.user) &&
      timingSafeEqual(Buffer.from(user), Buffer.from(o.user));
    const digestOk = got.length === want.length && timingSafeEqual(got, want);
    if (!userOk || !digestOk) return false;
    seenNonces.add(nonce);
    return true;
  };

  const handle = (req: IncomingMessage, res: ServerResponse, body: string, port: number): unknown => {
    const send = (status: number, xml: string): void => {
      res.writeHead(status, { 'content-type': 'application/soap+xml; charset=utf-8' });
      res.end(xml);
    };
    const action = /<s:Body>\s*<(?:[A-Za-z_][\w.-]*:)?([A-Za-z]+)/.exec(body)?.[1] ?? '?';
    byAction[action] = (byAction[action] ?? 0) + 1;
    if (req.method !== 'POST') return send(405, fault('ter:ActionNotSupported', 'POST only'));
    if (action === 'GetSystemDateAndTime') {
      const d = new Date();
      return send(
        200,
        envelope(
          `<tds:GetSystemDateAndTimeResponse><tds:SystemDateAndTime><tt:UTCDateTime><tt:Date><tt:Year>${d.getUTCFullYear()}</tt:Year><tt:Month>${d.getUTCMonth() + 1}</tt:Month><tt:Day>${d.getUTCDate()}</tt:Day></tt:Date><tt:Time><tt:Hour>${d.getUTCHours()}</tt:Hour><tt:Minute>${d.getUTCMinutes()}</tt:Minute><tt:Second>${d.getUTCSeconds()}</tt:Second></tt:Time></tt:UTCDateTime></tds:SystemDateAndTime></tds:GetSystemDateAndTimeResponse>`,
        ),
      );
    }
    if (!authenticated(body)) {
      unauthorized++;
      return send(401, fault('ter:NotAuthorized', 'Sender not authorized'));
    }
    const base = `http://127.0.0.1:${port}`;
    switch (action) {
      case 'GetCapabilities':
        return send(
          200,
          envelope(
            `<tds:GetCapabilitiesResponse><tds:Capabilities><tt:Device><tt:XAddr>${base}/onvif/device_service</tt:XAddr></tt:Device>` +
              `<tt:Media><tt:XAddr>${base}/onvif/media_service</tt:XAddr><tt:StreamingCapabilities><tt:RTP_RTSP_TCP>true</tt:RTP_RTSP_TCP></tt:StreamingCapabilities></tt:Media></tds:Capabilities></tds:GetCapabilitiesResponse>`,
          ),
        );
      case 'GetProfiles':
        return send(
          200,
          envelope(
            `<trt:GetProfilesResponse><trt:Profiles token="${SUB}" fixed="true"><tt:Name>sub</tt:Name></trt:Profiles>` +
              `<trt:Profiles token="${MAIN}" fixed="true"><tt:Name>main</tt:Name></trt:Profiles></trt:GetProfilesResponse>`,
          ),
        );
      case 'GetStreamUri': {
        const token = tag(body, 'ProfileToken')?.[2];
        if (token !== MAIN && token !== SUB) return send(400, fault('ter:InvalidArgVal', 'No such profile'));
        const uri = token === MAIN ? o.rtspUrl : sub.toString();
        return send(
          200,
          envelope(
            `<trt:GetStreamUriResponse><trt:MediaUri><tt:Uri>${uri}</tt:Uri><tt:InvalidAfterConnect>false</tt:InvalidAfterConnect><tt:InvalidAfterReboot>false</tt:InvalidAfterReboot><tt:Timeout>PT0S</tt:Timeout></trt:MediaUri></trt:GetStreamUriResponse>`,
          ),
        );
      }
      case 'SetSynchronizationPoint': {
        const token = tag(body, 'ProfileToken')?.[2];
        if (token === MAIN) {
          synchronizationPoints++;
          o.onSynchronizationPoint();
        } else {
          wrongProfile++;
          if (token !== SUB) return send(400, fault('ter:InvalidArgVal', 'No such profile'));
        }
        return send(200, envelope('<trt:SetSynchronizationPointResponse/>'));
      }
      default:
        return send(400, fault('ter:ActionNotSupported', 'Not supported'));
    }
  };

  const server = createServer((req, res) => {
    requests++;
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > 64 * 1024) req.destroy();
      else chunks.push(c);
    });
    req.on('end', () => {
      const port = (server.address() as AddressInfo).port;
      handle(req, res, Buffer.concat(chunks).toString('utf8'), port);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/onvif/device_service`,
    mainProfile: MAIN,
    stats: () => ({ requests, unauthorized, synchronizationPoints, wrongProfile, byAction: { ...byAction } }),
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
