import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  Attr,
  crc32,
  decodeChannelData,
  decodeErrorCode,
  decodeString,
  decodeStunMessage,
  decodeXorAddress,
  encodeChannelData,
  encodeErrorCode,
  encodeString,
  encodeStunMessage,
  encodeXorAddress,
  formatIP,
  getAttribute,
  longTermKey,
  messageType,
  nobleStunCrypto,
  parseIP,
  RELAY_ERROR_CODES,
  RelayError,
  StunClass,
  StunDecodeError,
  StunMethod,
  splitMessageType,
  streamFrameSize,
  verifyIntegrity,
} from '../src/codec/index.js';
import { issueTurnCredentials, parseRestUsername, verifyTurnCredentials } from '../src/credentials.js';
import { nodeStunCrypto } from '../src/server/node-crypto.js';
import {
  LTC_NONCE,
  LTC_PASSWORD,
  LTC_REALM,
  LTC_USERNAME,
  RFC5769_REQUEST,
  RFC5769_REQUEST_LTC,
  RFC5769_RESPONSE_V4,
  RFC5769_RESPONSE_V6,
  SHORT_TERM_PASSWORD,
} from './vectors.js';

const here = dirname(fileURLToPath(import.meta.url));
const shortKey = new TextEncoder().encode(SHORT_TERM_PASSWORD);

for (const [name, crypto] of [
  ['node:crypto', nodeStunCrypto],
  ['@noble/hashes', nobleStunCrypto],
] as const) {
  describe(`RFC 5769 vectors (${name})`, () => {
    it('§2.1 sample request: fingerprint, integrity, attributes', () => {
      const m = decodeStunMessage(RFC5769_REQUEST);
      assert.equal(m.method, StunMethod.Binding);
      assert.equal(m.cls, StunClass.Request);
      assert.ok(m.hasFingerprint);
      assert.equal(decodeString(getAttribute(m, Attr.Username)!, 513), 'evtj:h6vY');
      assert.equal(decodeString(getAttribute(m, Attr.Software)!, 763), 'STUN test client');
      assert.ok(verifyIntegrity(m, shortKey, crypto), 'MESSAGE-INTEGRITY verifies');
      assert.ok(!verifyIntegrity(m, new TextEncoder().encode('wrong'), crypto));
    });

    it('§2.2 IPv4 response: XOR-MAPPED-ADDRESS 192.0.2.1:32853', () => {
      const m = decodeStunMessage(RFC5769_RESPONSE_V4);
      assert.equal(m.cls, StunClass.SuccessResponse);
      assert.ok(verifyIntegrity(m, shortKey, crypto));
      const v = getAttribute(m, Attr.XorMappedAddress)!;
      assert.deepEqual(decodeXorAddress(v, m.transactionId), {
        family: 4,
        address: '192.0.2.1',
        port: 32853,
      });
      assert.deepEqual(
        [...encodeXorAddress({ family: 4, address: '192.0.2.1', port: 32853 }, m.transactionId)],
        [...v],
      );
    });

    it('§2.3 IPv6 response: XOR-MAPPED-ADDRESS [2001:db8:1234:5678:11:2233:4455:6677]:32853', () => {
      const m = decodeStunMessage(RFC5769_RESPONSE_V6);
      assert.ok(verifyIntegrity(m, shortKey, crypto));
      const v = getAttribute(m, Attr.XorMappedAddress)!;
      const addr = { family: 6, address: '2001:db8:1234:5678:11:2233:4455:6677', port: 32853 } as const;
      assert.deepEqual(decodeXorAddress(v, m.transactionId), addr);
      assert.deepEqual([...encodeXorAddress(addr, m.transactionId)], [...v]);
    });

    it('§2.4 long-term credentials: key = MD5(user:realm:pass), re-encodes byte for byte', () => {
      const m = decodeStunMessage(RFC5769_REQUEST_LTC);
      assert.equal(decodeString(getAttribute(m, Attr.Username)!, 513), LTC_USERNAME);
      assert.equal(decodeString(getAttribute(m, Attr.Nonce)!, 763), LTC_NONCE);
      assert.equal(decodeString(getAttribute(m, Attr.Realm)!, 763), LTC_REALM);
      const key = longTermKey(LTC_USERNAME, LTC_REALM, LTC_PASSWORD, crypto);
      assert.ok(verifyIntegrity(m, key, crypto));
      const again = encodeStunMessage(
        {
          method: StunMethod.Binding,
          cls: StunClass.Request,
          transactionId: m.transactionId,
          attributes: [
            { type: Attr.Username, value: encodeString(LTC_USERNAME) },
            { type: Attr.Nonce, value: encodeString(LTC_NONCE) },
            { type: Attr.Realm, value: encodeString(LTC_REALM) },
          ],
        },
        { integrityKey: key, crypto },
      );
      assert.deepEqual([...again], [...RFC5769_REQUEST_LTC]);
    });
  });
}

describe('codec details', () => {
  it('rejects a corrupted FINGERPRINT with E_STUN_FINGERPRINT', () => {
    const b = RFC5769_REQUEST.slice();
    b[b.length - 1] = b[b.length - 1]! ^ 1;
    assert.throws(
      () => decodeStunMessage(b),
      (e: unknown) => e instanceof StunDecodeError && e.code === 'E_STUN_FINGERPRINT',
    );
  });

  it('detects tampering through MESSAGE-INTEGRITY', () => {
    const b = RFC5769_REQUEST.slice();
    b[30] = b[30]! ^ 1; // inside SOFTWARE
    const m = decodeStunMessage(b, { checkFingerprint: false });
    assert.ok(!verifyIntegrity(m, shortKey, nodeStunCrypto));
  });

  it('CRC-32 check value', () => {
    assert.equal(crc32(new TextEncoder().encode('123456789')), 0xcbf43926);
  });

  it('message type split/compose covers all methods and classes', () => {
    for (let method = 0; method < 0x1000; method += 7) {
      for (const cls of [0, 1, 2, 3] as const) {
        assert.deepEqual(splitMessageType(messageType(method, cls)), { method, cls });
      }
    }
    assert.equal(messageType(StunMethod.Allocate, StunClass.ErrorResponse), 0x0113);
    assert.equal(messageType(StunMethod.Data, StunClass.Indication), 0x0017);
  });

  it('integrity + SHA256 integrity + fingerprint round trip', () => {
    const key = new Uint8Array(16).fill(7);
    const out = encodeStunMessage(
      { method: StunMethod.Refresh, cls: StunClass.Request, transactionId: new Uint8Array(12).fill(1) },
      { integrityKey: key, integritySha256Key: key, crypto: nodeStunCrypto, fingerprint: true },
    );
    const m = decodeStunMessage(out);
    assert.ok(m.integrityOffset > 0 && m.integritySha256Offset > m.integrityOffset && m.hasFingerprint);
    assert.ok(verifyIntegrity(m, key, nodeStunCrypto));
    assert.ok(verifyIntegrity(m, key, nobleStunCrypto));
  });

  it('ERROR-CODE round trip', () => {
    assert.deepEqual(decodeErrorCode(encodeErrorCode(486)), {
      code: 486,
      reason: 'Allocation Quota Reached',
    });
  });

  it('IP text forms', () => {
    for (const s of [
      '1.2.3.4',
      '::1',
      '::',
      '2001:db8::1',
      'fe80::1:2',
      '::ffff:1.2.3.4',
      '1:2:3:4:5:6:7:8',
      '1::8',
    ]) {
      assert.equal(formatIP(parseIP(s)!), s);
    }
    assert.equal(formatIP(parseIP('2001:0db8:0:0:1:0:0:1')!), '2001:db8::1:0:0:1');
    for (const s of ['1.2.3', '256.1.1.1', '01.1.1.1', '1::2::3', 'g::1', ''])
      assert.equal(parseIP(s), undefined);
  });

  it('ChannelData framing (UDP and stream)', () => {
    const f = encodeChannelData(0x4001, new Uint8Array([1, 2, 3, 4, 5]), { pad: true });
    assert.equal(f.length, 12);
    assert.equal(streamFrameSize(f), 12);
    assert.deepEqual([...decodeChannelData(f, { stream: true }).data], [1, 2, 3, 4, 5]);
    assert.deepEqual([...decodeChannelData(f.subarray(0, 9)).data], [1, 2, 3, 4, 5]);
    assert.throws(() => decodeChannelData(f.subarray(0, 8)), { code: 'E_CHANNEL_DECODE' });
    assert.throws(() => decodeChannelData(new Uint8Array([0x30, 0, 0, 0])), { code: 'E_CHANNEL_DECODE' });
    assert.equal(streamFrameSize(new Uint8Array([0x40, 0])), -1);
  });

  it('size limit gives E_STUN_TOO_LARGE', () => {
    assert.throws(() => decodeStunMessage(RFC5769_REQUEST, { maxSize: 50 }), { code: 'E_STUN_TOO_LARGE' });
  });
});

describe('TURN REST credentials', () => {
  it('matches coturn: password = base64(HMAC-SHA1(secret, "expiry:id"))', () => {
    const c = issueTurnCredentials({
      secret: 'north',
      id: 'alice',
      ttlSeconds: 600,
      nowMs: 1_700_000_000_000,
    });
    assert.equal(c.username, '1700000600:alice');
    assert.equal(c.password, createHmac('sha1', 'north').update('1700000600:alice').digest('base64'));
    // Independently computed: printf '1700000600:alice' | openssl dgst -sha1 -hmac north -binary | base64
    assert.equal(c.password, 'gthUwOpcRoLI0MMCziCEBOWYnpo=');
  });

  it('verifies, refuses expired and malformed usernames', () => {
    const now = 1_700_000_000_000;
    const c = issueTurnCredentials({ secret: 's', id: 'x', ttlSeconds: 10, nowMs: now });
    assert.equal(verifyTurnCredentials('s', c.username, { password: c.password, nowMs: now }).ok, true);
    assert.deepEqual(verifyTurnCredentials('s', c.username, { nowMs: now + 11_000 }), {
      ok: false,
      reason: 'expired',
    });
    assert.deepEqual(verifyTurnCredentials('s', 'alice', { nowMs: now }), { ok: false, reason: 'malformed' });
    assert.deepEqual(verifyTurnCredentials('s', c.username, { password: 'nope', nowMs: now }), {
      ok: false,
      reason: 'bad-password',
    });
    assert.deepEqual(parseRestUsername('1700000010'), { expiresAt: 1700000010, id: '' });
    assert.throws(() => issueTurnCredentials({ secret: 's', id: 'a:b' }), { code: 'E_CREDENTIALS' });
  });
});

describe('package hygiene', () => {
  it('codec imports no node: modules', () => {
    const dir = join(here, '../src/codec');
    for (const f of readdirSync(dir)) {
      const src = readFileSync(join(dir, f), 'utf8');
      assert.ok(!/from ['"]node:/.test(src), `${f} imports node:`);
    }
  });

  it('README documents every error code', () => {
    const readme = readFileSync(join(here, '../README.md'), 'utf8');
    for (const code of RELAY_ERROR_CODES) assert.ok(readme.includes(`\`${code}\``), code);
    assert.ok(new StunDecodeError('x') instanceof RelayError);
  });
});
