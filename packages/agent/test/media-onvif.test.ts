// ONVIF client: the UsernameToken digest (the ONVIF Application Programmer's Guide vector), the SOAP
// envelopes, the strict XML parser and response checks (with fast-check fuzzing), the client's call
// sequence against a scripted camera, and the camera map's `onvif` field.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  BODIES,
  buildEnvelope,
  child,
  MediaError,
  NS,
  OnvifClient,
  parseCamerasYaml,
  parseMediaXAddr,
  parseProfileTokens,
  parseSoapResponse,
  parseStreamUri,
  parseSystemDateAndTime,
  parseXml,
  passwordDigest,
  XmlError,
} from '../src/media/index.js';

const env = (body: string): string =>
  `<?xml version="1.0"?><env:Envelope xmlns:env="${NS.soap}" xmlns:tds="${NS.tds}" xmlns:trt="${NS.trt}" xmlns:tt="${NS.tt}"><env:Body>${body}</env:Body></env:Envelope>`;
const CAPS = (xaddr: string) =>
  env(
    `<tds:GetCapabilitiesResponse><tds:Capabilities><tt:Media><tt:XAddr>${xaddr}</tt:XAddr></tt:Media></tds:Capabilities></tds:GetCapabilitiesResponse>`,
  );
const PROFILES = env(
  '<trt:GetProfilesResponse><trt:Profiles token="sub"/><trt:Profiles token="main" fixed="true"><tt:Name>m</tt:Name></trt:Profiles></trt:GetProfilesResponse>',
);
const URI = (u: string) =>
  env(
    `<trt:GetStreamUriResponse><trt:MediaUri><tt:Uri>${u}</tt:Uri></trt:MediaUri></trt:GetStreamUriResponse>`,
  );
const FAULT = (sub: string) =>
  env(
    `<env:Fault><env:Code><env:Value>env:Sender</env:Value><env:Subcode><env:Value xmlns:ter="http://www.onvif.org/ver10/error">${sub}</env:Value></env:Subcode></env:Code><env:Reason><env:Text xml:lang="en">no</env:Text></env:Reason></env:Fault>`,
  );

describe('WS-Security UsernameToken', () => {
  it('PasswordDigest matches the ONVIF Application Programmer’s Guide vector', () => {
    const nonce = Buffer.from('LKqI6G/AikKCQrN0zqZFlg==', 'base64');
    assert.equal(
      passwordDigest(nonce, '2010-09-16T07:50:45Z', 'userpassword'),
      'tuOSpGlFlIXsozq4HFNeeGeFLEI=',
    );
  });

  it('the envelope carries user, digest, nonce and Created, escapes the user, and never the password', () => {
    const nonce = Buffer.from('LKqI6G/AikKCQrN0zqZFlg==', 'base64');
    const xml = buildEnvelope(BODIES.setSynchronizationPoint('a&b'), {
      user: 'ad<min',
      password: 'userpassword',
      nonce,
      created: new Date('2010-09-16T07:50:45.123Z'),
    });
    assert.ok(!xml.includes('userpassword'));
    const doc = parseXml(xml);
    const tok = child(child(child(doc, NS.soap, 'Header'), NS.wsse, 'Security'), NS.wsse, 'UsernameToken');
    assert.equal(child(tok, NS.wsse, 'Username')?.text, 'ad<min');
    assert.equal(child(tok, NS.wsse, 'Password')?.text, 'tuOSpGlFlIXsozq4HFNeeGeFLEI=');
    assert.match(child(tok, NS.wsse, 'Password')?.attrs.Type ?? '', /#PasswordDigest$/);
    assert.equal(child(tok, NS.wsse, 'Nonce')?.text, 'LKqI6G/AikKCQrN0zqZFlg==');
    assert.equal(child(tok, NS.wsu, 'Created')?.text, '2010-09-16T07:50:45Z');
    const body = child(doc, NS.soap, 'Body')?.children[0];
    assert.equal(body?.ns, NS.trt);
    assert.equal(body?.local, 'SetSynchronizationPoint');
    assert.equal(child(body, NS.trt, 'ProfileToken')?.text, 'a&b');
  });
});

describe('strict XML parser', () => {
  it('resolves namespaces, entities, CDATA and character references', () => {
    const d = parseXml(
      '<?xml version="1.0"?><!-- c --><a:x xmlns:a="urn:a" xmlns="urn:d" k="1&amp;2"><y>&lt;&#65;&#x42;<![CDATA[<z>]]></y><a:y/></a:x>',
    );
    assert.equal(d.ns, 'urn:a');
    assert.equal(d.attrs.k, '1&2');
    assert.equal(d.children[0]?.ns, 'urn:d');
    assert.equal(d.children[0]?.text, '<AB<z>');
    assert.equal(d.children[1]?.ns, 'urn:a');
  });

  for (const [what, xml] of [
    ['a DOCTYPE (entity expansion)', '<!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>'],
    ['an unknown entity', '<x>&foo;</x>'],
    ['an undeclared prefix', '<p:x/>'],
    ['a mismatched end tag', '<x><y></x></y>'],
    ['an unclosed element', '<x><y>'],
    ['two roots', '<x/><y/>'],
    ['text outside the root', 'hi<x/>'],
    ['a duplicate attribute', '<x a="1" a="2"/>'],
    ['a NUL character reference', '<x>&#0;</x>'],
    ['a control character', '<x>\u0001</x>'],
    ['nothing', '   '],
  ] as const) {
    it(`refuses ${what}`, () => assert.throws(() => parseXml(xml), XmlError));
  }

  it('enforces its size, depth, element and attribute limits', () => {
    assert.throws(() => parseXml(`<x>${'a'.repeat(1000)}</x>`, { maxChars: 100 }), /longer than/);
    assert.throws(() => parseXml(`${'<x>'.repeat(40)}${'</x>'.repeat(40)}`), /deeper than 32/);
    assert.throws(() => parseXml(`<x>${'<y/>'.repeat(5000)}</x>`), /more than 4096 elements/);
    const attrs = Array.from({ length: 70 }, (_, i) => `a${i}="1"`).join(' ');
    assert.throws(() => parseXml(`<x ${attrs}/>`), /more than 64 attributes/);
  });

  it('fuzz: arbitrary input only ever throws XmlError', () => {
    const pieces = fc.constantFrom(
      '<',
      '>',
      '</',
      '/>',
      '<a:b',
      'xmlns:a="urn:x"',
      '="',
      '"',
      '&amp;',
      '&#',
      ';',
      '<![CDATA[',
      ']]>',
      '<!--',
      '-->',
      '<?',
      '?>',
      ' ',
      'x',
      '\u{1F600}',
      '<x>',
      '</x>',
    );
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 200 }),
          fc.array(pieces, { maxLength: 60 }).map((a) => a.join('')),
        ),
        (s) => {
          try {
            parseXml(s);
          } catch (e) {
            assert.ok(e instanceof XmlError, String(e));
          }
        },
      ),
      { numRuns: 3000 },
    );
  });
});

describe('SOAP responses', () => {
  it('reads the Media XAddr, the profile tokens and a stream URI', () => {
    assert.equal(
      parseMediaXAddr(parseSoapResponse(CAPS('http://10.0.0.2/onvif/media'))),
      'http://10.0.0.2/onvif/media',
    );
    assert.deepEqual(parseProfileTokens(parseSoapResponse(PROFILES)), ['sub', 'main']);
    assert.equal(parseStreamUri(parseSoapResponse(URI('rtsp://10.0.0.2/s1'))), 'rtsp://10.0.0.2/s1');
  });

  it('turns faults into typed errors: NotAuthorized is onvif-unauthorized, others onvif-fault', () => {
    assert.throws(
      () => parseSoapResponse(FAULT('ter:NotAuthorized')),
      (e: unknown) => e instanceof MediaError && e.reason === 'onvif-unauthorized',
    );
    assert.throws(
      () => parseSoapResponse(FAULT('ter:InvalidArgVal')),
      (e: unknown) =>
        e instanceof MediaError && e.reason === 'onvif-fault' && /InvalidArgVal/.test(e.message),
    );
  });

  for (const [what, xml, check] of [
    ['not SOAP', '<html><body>hi</body></html>', () => undefined],
    [
      'SOAP 1.1',
      '<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"><e:Body><x/></e:Body></e:Envelope>',
      () => undefined,
    ],
    ['an empty Body', env(''), () => undefined],
    ['a javascript: XAddr', CAPS('javascript:alert(1)'), parseMediaXAddr],
    ['a file: XAddr', CAPS('file:///etc/passwd'), parseMediaXAddr],
    [
      'no XAddr',
      env('<tds:GetCapabilitiesResponse><tds:Capabilities/></tds:GetCapabilitiesResponse>'),
      parseMediaXAddr,
    ],
    [
      'a profile without token',
      env('<trt:GetProfilesResponse><trt:Profiles/></trt:GetProfilesResponse>'),
      parseProfileTokens,
    ],
    ['no profile', env('<trt:GetProfilesResponse/>'), parseProfileTokens],
    ['the wrong response', PROFILES, parseMediaXAddr],
  ] as const) {
    it(`refuses ${what} with onvif-response`, () =>
      assert.throws(
        () => (check as (e: ReturnType<typeof parseSoapResponse>) => unknown)(parseSoapResponse(xml)),
        (e: unknown) => e instanceof MediaError && e.reason === 'onvif-response',
      ));
  }

  it('fuzz: mutated responses only ever give a value or a MediaError', () => {
    const docs = [CAPS('http://cam/onvif/media'), PROFILES, URI('rtsp://cam/s'), FAULT('ter:NotAuthorized')];
    const parsers = [parseMediaXAddr, parseProfileTokens, parseStreamUri, parseSystemDateAndTime];
    fc.assert(
      fc.property(
        fc.constantFrom(...docs),
        fc.array(fc.tuple(fc.nat(), fc.nat(20), fc.string({ maxLength: 8 })), { maxLength: 6 }),
        fc.constantFrom(...parsers),
        (doc, edits, parse) => {
          let s = doc;
          for (const [at, del, ins] of edits) {
            const p = at % (s.length + 1);
            s = s.slice(0, p) + ins + s.slice(p + del);
          }
          try {
            parse(parseSoapResponse(s));
          } catch (e) {
            assert.ok(e instanceof MediaError && e.reason.startsWith('onvif-'), String(e));
          }
        },
      ),
      { numRuns: 3000 },
    );
  });
});

type Script = (action: string, url: string, body: string) => Response | Promise<Response>;
const xmlResponse = (xml: string, status = 200): Response =>
  new Response(xml, { status, headers: { 'content-type': 'application/soap+xml' } });

function fakeFetch(script: Script): {
  fetch: typeof fetch;
  calls: { action: string; url: string; body: string }[];
} {
  const calls: { action: string; url: string; body: string }[] = [];
  const f = (async (input: string | URL | Request, init?: RequestInit) => {
    const headers = (init?.headers ?? {}) as Record<string, string>;
    const ct = String(headers['content-type']);
    const action = /action="[^"]*\/(\w+)"/.exec(ct)?.[1] ?? '?';
    assert.equal(init?.redirect, 'error', 'redirects are refused');
    const body = String(init?.body);
    calls.push({ action, url: String(input), body });
    return script(action, String(input), body);
  }) as typeof fetch;
  return { fetch: f, calls };
}

const CFG = { url: 'http://cam.lan/onvif/device_service', user: 'admin', password: 'S3cret!pass' };

describe('OnvifClient', () => {
  it('finds the Media service and the profile whose stream is ours, then sets the sync point', async () => {
    const { fetch, calls } = fakeFetch((action, _url, body) => {
      switch (action) {
        case 'GetCapabilities':
          return xmlResponse(CAPS('http://cam.lan:8080/onvif/media'));
        case 'GetProfiles':
          return xmlResponse(PROFILES);
        case 'GetStreamUri':
          return xmlResponse(
            URI(body.includes('>main<') ? 'rtsp://192.168.1.9/stream1' : 'rtsp://192.168.1.9/stream2'),
          );
        case 'SetSynchronizationPoint':
          return xmlResponse(env('<trt:SetSynchronizationPointResponse/>'));
      }
      return xmlResponse(FAULT('ter:ActionNotSupported'), 400);
    });
    const c = new OnvifClient(CFG, { fetch, rtspUrl: 'rtsp://admin:x@cam.lan/stream1' });
    await c.setSynchronizationPoint();
    assert.deepEqual(
      calls.map((x) => x.action),
      [
        'GetSystemDateAndTime',
        'GetCapabilities',
        'GetProfiles',
        'GetStreamUri',
        'GetStreamUri',
        'SetSynchronizationPoint',
      ],
    );
    assert.equal(c.profileToken, 'main');
    assert.equal(calls[5]?.url, 'http://cam.lan:8080/onvif/media');
    assert.match(calls[5]?.body ?? '', /<trt:ProfileToken>main<\/trt:ProfileToken>/);
    assert.ok(!calls[0]?.body.includes('UsernameToken'), 'the clock is asked without credentials');
    for (const x of calls) assert.ok(!x.body.includes(CFG.password), 'only the digest leaves');
    // Resolved once: a second request is one call.
    await c.setSynchronizationPoint();
    assert.equal(calls.length, 7);
  });

  it('never sends the credentials to another host than the configured device', async () => {
    const { fetch, calls } = fakeFetch((action) =>
      action === 'GetCapabilities'
        ? xmlResponse(CAPS('http://evil.example:9999/onvif/media?x=1'))
        : xmlResponse(env('<trt:SetSynchronizationPointResponse/>')),
    );
    await new OnvifClient({ ...CFG, profile: 'p1' }, { fetch }).setSynchronizationPoint();
    assert.equal(calls.at(-1)?.url, 'http://cam.lan/onvif/media?x=1');
    for (const x of calls) assert.equal(new URL(x.url).hostname, 'cam.lan');
  });

  it('dates the UsernameToken by the camera’s clock (unauthenticated GetSystemDateAndTime)', async () => {
    const clock = (y: number, mo: number, d: number, h: number, mi: number, se: number) =>
      env(
        `<tds:GetSystemDateAndTimeResponse><tds:SystemDateAndTime><tt:UTCDateTime><tt:Date><tt:Year>${y}</tt:Year><tt:Month>${mo}</tt:Month><tt:Day>${d}</tt:Day></tt:Date><tt:Time><tt:Hour>${h}</tt:Hour><tt:Minute>${mi}</tt:Minute><tt:Second>${se}</tt:Second></tt:Time></tt:UTCDateTime></tds:SystemDateAndTime></tds:GetSystemDateAndTimeResponse>`,
      );
    const { fetch, calls } = fakeFetch((action) =>
      action === 'GetSystemDateAndTime'
        ? xmlResponse(clock(2020, 1, 2, 3, 4, 5))
        : action === 'GetCapabilities'
          ? xmlResponse(CAPS('http://cam.lan/onvif/media'))
          : xmlResponse(env('<trt:SetSynchronizationPointResponse/>')),
    );
    const now = new Date('2026-12-03T07:00:00Z');
    await new OnvifClient({ ...CFG, profile: 'p' }, { fetch, now: () => now }).setSynchronizationPoint();
    const created = /<wsu:Created>([^<]+)</.exec(calls[1]?.body ?? '')?.[1];
    assert.equal(created, '2020-01-02T03:04:05Z');
    // A malformed clock is ignored (our own clock is used), never fatal.
    const bad = fakeFetch((action) =>
      action === 'GetSystemDateAndTime'
        ? xmlResponse(clock(2020, 13, 2, 3, 4, 5))
        : action === 'GetCapabilities'
          ? xmlResponse(CAPS('http://cam.lan/onvif/media'))
          : xmlResponse(env('<trt:SetSynchronizationPointResponse/>')),
    );
    await new OnvifClient(
      { ...CFG, profile: 'p' },
      { fetch: bad.fetch, now: () => now },
    ).setSynchronizationPoint();
    assert.equal(/<wsu:Created>([^<]+)</.exec(bad.calls[1]?.body ?? '')?.[1], '2026-12-03T07:00:00Z');
  });

  it('a wrong password is onvif-unauthorized (SOAP fault, or bare HTTP 401)', async () => {
    for (const res of [
      () => xmlResponse(FAULT('ter:NotAuthorized'), 400),
      () => new Response('nope', { status: 401 }),
    ]) {
      const { fetch } = fakeFetch(() => res());
      await assert.rejects(
        new OnvifClient(CFG, { fetch }).setSynchronizationPoint(),
        (e: unknown) =>
          e instanceof MediaError && e.reason === 'onvif-unauthorized' && !e.message.includes(CFG.password),
      );
    }
  });

  it('caps the response size, streamed or announced', async () => {
    const big = `<x>${'a'.repeat(300 * 1024)}</x>`;
    for (const mk of [
      () => new Response(big, { status: 200 }),
      () =>
        new Response(
          new ReadableStream({
            pull(c) {
              c.enqueue(new TextEncoder().encode('a'.repeat(64 * 1024)));
            },
          }),
          { status: 200 },
        ),
    ]) {
      const { fetch } = fakeFetch(() => mk());
      await assert.rejects(
        new OnvifClient(CFG, { fetch }).setSynchronizationPoint(),
        (e: unknown) => e instanceof MediaError && e.reason === 'onvif-too-large',
      );
    }
  });

  it('network failures and timeouts are typed', async () => {
    const down = (async () => {
      throw Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNREFUSED' } });
    }) as typeof fetch;
    await assert.rejects(
      new OnvifClient(CFG, { fetch: down }).setSynchronizationPoint(),
      (e: unknown) =>
        e instanceof MediaError && e.reason === 'onvif-network' && /ECONNREFUSED/.test(e.message),
    );
    const slow = ((_u: unknown, init?: RequestInit) =>
      new Promise((_r, rej) =>
        init?.signal?.addEventListener('abort', () => rej(init.signal?.reason)),
      )) as typeof fetch;
    // AbortSignal.timeout does not keep the event loop alive (the agent's loop always is).
    const keepAlive = setInterval(() => undefined, 1000);
    try {
      await assert.rejects(
        new OnvifClient(CFG, { fetch: slow, timeoutMs: 50 }).setSynchronizationPoint(),
        (e: unknown) => e instanceof MediaError && e.reason === 'onvif-timeout',
      );
    } finally {
      clearInterval(keepAlive);
    }
  });

  it('refuses a device URL with credentials in it', () => {
    assert.throws(
      () => new OnvifClient({ ...CFG, url: 'http://a:b@cam/' }),
      (e: unknown) => e instanceof MediaError && e.reason === 'onvif-config',
    );
  });
});

describe('camera map: onvif', () => {
  const yaml = (onvif: string, src = 'rtsp://admin:p%40ss@cam.lan/s1') =>
    `cameras:\n  porch:\n    source: ${src}\n    mode: on-demand\n    onvif: ${onvif}\n`;

  it('takes user and password from the RTSP URL by default (decoded)', () => {
    const [c] = parseCamerasYaml(yaml('http://cam.lan/onvif/device_service'));
    assert.equal(c?.onvif?.url, 'http://cam.lan/onvif/device_service');
    assert.equal(c?.onvif?.user, 'admin');
    assert.equal(c?.onvif?.password, 'p@ss');
    assert.ok(!JSON.stringify(c).includes('p@ss'), 'the password stays out of JSON');
  });

  it('accepts a mapping with user, password (from the environment) and profile', () => {
    const [c] = parseCamerasYaml(
      yaml(
        // biome-ignore lint/suspicious/noTemplateCurlyInString: a ${ENV} substitution in the YAML
        '{url: "https://cam.lan:8443/onvif/device_service", user: op, password: "${ONVIF_PASS}", profile: Profile_1}',
      ),
      { env: { ONVIF_PASS: 'Tr0ub4dor&3' } },
    );
    assert.deepEqual(
      { user: c?.onvif?.user, password: c?.onvif?.password, profile: c?.onvif?.profile },
      { user: 'op', password: 'Tr0ub4dor&3', profile: 'Profile_1' },
    );
  });

  for (const [what, onvif, src, re] of [
    ['a non-http URL', 'rtsp://cam.lan/x', undefined, /http:\/\/ or https:\/\//],
    ['credentials in the URL', 'http://admin:pw@cam.lan/onvif', undefined, /not in the ONVIF URL/],
    ['an unknown key', '{url: "http://cam.lan/", pass: x}', undefined, /unknown key "pass"/],
    ['a missing url', '{user: x}', undefined, /"url" is missing/],
    ['no credentials anywhere', 'http://cam.lan/onvif', 'rtsp://cam.lan/s1', /needs a user and password/],
    ['a non-rtsp camera', 'http://cam.lan/onvif', 'testsrc', /only rtsp/],
    ['a bad profile token', '{url: "http://cam.lan/", profile: "a b"}', undefined, /profile must be/],
    ['a number', '42', undefined, /device service URL or a mapping/],
  ] as const) {
    it(`refuses ${what} with camera-onvif`, () =>
      assert.throws(
        () => parseCamerasYaml(yaml(onvif, src)),
        (e: unknown) =>
          e instanceof MediaError &&
          e.reason === 'camera-onvif' &&
          re.test(e.message) &&
          !e.message.includes('pw@'),
      ));
  }
});

describe('strict XML parser: hostile sizes', () => {
  it('parses a document of many many-attribute elements near the size cap (attributes matched in place)', () => {
    const el = `<y ${Array.from({ length: 60 }, (_, i) => `a${i}="v"`).join(' ')}/>`;
    const n = Math.floor((250 * 1024) / el.length);
    const doc = parseXml(`<x>${el.repeat(n)}</x>`);
    assert.equal(doc.children.length, n);
    assert.equal(doc.children[n - 1]?.attrs.a59, 'v');
  });
});
