/**
 * The built bundle (threat model S1, A1: the attacker has every byte we ship): all files are there,
 * nothing in them is a secret or grants access, and the HTML is CSP-clean (no inline script/style).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { isId } from '@hearth/protocol';
import { SHELL_FILES } from '../src/index.js';

const pkg = fileURLToPath(new URL('..', import.meta.url));
const dist = join(pkg, 'dist');

function files(dir: string, out: string[] = []): string[] {
  for (const n of readdirSync(dir)) {
    const p = join(dir, n);
    if (statSync(p).isDirectory()) files(p, out);
    else out.push(p);
  }
  return out;
}

const TEXT = /\.(js|css|html|webmanifest|svg|map|json|ts)$/;

describe('built viewer', () => {
  before(() => {
    const r = spawnSync(process.execPath, ['build.mjs'], { cwd: pkg, encoding: 'utf8' });
    assert.equal(r.status, 0, `build failed: ${r.stderr}`);
  });

  it('produces every shell file, the service worker and the icons', () => {
    for (const f of [...SHELL_FILES, 'sw.js']) {
      const st = statSync(join(dist, f));
      assert.ok(st.size > 0, f);
    }
    const png = readFileSync(join(dist, 'icon-512.png'));
    assert.equal(png.subarray(1, 4).toString('ascii'), 'PNG');
    assert.equal(png.readUInt32BE(16), 512);
    const manifest = JSON.parse(readFileSync(join(dist, 'manifest.webmanifest'), 'utf8'));
    assert.equal(manifest.display, 'standalone');
    assert.ok(manifest.icons.some((i: { sizes: string }) => i.sizes === '512x512'));
    assert.ok(manifest.icons.some((i: { purpose?: string }) => i.purpose === 'maskable'));
    const sw = readFileSync(join(dist, 'sw.js'), 'utf8');
    for (const f of SHELL_FILES) assert.ok(sw.includes(`/${f}`), `sw caches ${f}`);
    assert.ok(!sw.includes('/ws"'), 'sw never caches /ws');
  });

  it('index.html is CSP-clean: no inline script, no inline style, no style attributes, no external origins', () => {
    const html = readFileSync(join(dist, 'index.html'), 'utf8');
    assert.match(html, /<meta name="viewport" content="width=device-width/);
    for (const m of html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)) {
      assert.match(m[1]!, /\bsrc="\/[^"]+"/, 'scripts are external');
      assert.equal(m[2]!.trim(), '', 'no inline script body');
    }
    assert.doesNotMatch(html, /<style\b/i);
    assert.doesNotMatch(html, /\sstyle=/i);
    assert.doesNotMatch(html, /\son[a-z]+=/i, 'no inline event handlers');
    assert.doesNotMatch(html, /(src|href)="(https?:)?\/\//, 'no other origins');
  });

  it('the app code never builds markup or styles from strings (CSP, XSS)', () => {
    const js = readFileSync(join(dist, 'app.js'), 'utf8');
    assert.doesNotMatch(js, /\.innerHTML\s*=|insertAdjacentHTML|document\.write/);
    assert.doesNotMatch(js, /setAttribute\(\s*["']style["']/);
    assert.doesNotMatch(js, /\beval\(/);
  });

  /**
   * Published constants the pairing code needs (they are the same in every copy of Hearth and every
   * SPAKE2+ implementation, so they grant nothing): NIST P-256 domain parameters (SEC 2: p, a, b,
   * n, Gx, Gy) and the RFC 9383 §4 points M and N. Exact values only.
   */
  const PUBLIC_CONSTANTS = new Set([
    '0xffffffff00000001000000000000000000000000ffffffffffffffffffffffff', // p
    '0xffffffff00000001000000000000000000000000fffffffffffffffffffffffc', // a
    '0x5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604b', // b
    '0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551', // n
    '0x6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296', // Gx
    '0x4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5', // Gy
    '02886e2f97ace46e55ba9dd7242579f2993b64e16ef3dcab95afd497333d8fa12f', // M
    '03d8bbd6c639c62937b04d997f38c3770719c629d7014d49a24b4f98baa1292b49', // N
  ]);

  it('contains no private key material and no hard-coded secrets', () => {
    const findings: string[] = [];
    for (const f of files(dist)) {
      if (!TEXT.test(f)) continue;
      const text = readFileSync(f, 'utf8');
      const rel = f.slice(dist.length + 1);
      const flag = (what: string, m: string) => findings.push(`${rel}: ${what}: ${m.slice(0, 60)}`);
      for (const m of text.matchAll(/-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/g)) flag('PEM private key', m[0]);
      for (const m of text.matchAll(/-----BEGIN [A-Z0-9 ]*(CERTIFICATE|KEY)-----/g)) flag('PEM block', m[0]);
      // base64 of a PKCS#8 Ed25519/X25519 private key header ("MC4CAQAwBQYDK2Vw" / "...K2Vu").
      for (const m of text.matchAll(/MC4CAQAwBQYDK2V[wu]/g)) flag('PKCS#8 private key', m[0]);
      // A JWK with a private part.
      for (const m of text.matchAll(/"d"\s*:\s*"[A-Za-z0-9_-]{40,}"/g)) flag('JWK private key', m[0]);
      // Any valid Hearth key or ID baked in (a device, user or server identity must never ship).
      for (const m of text.matchAll(/\b(hdid|hdk|huk|hsk)_[a-z2-7]{20,}\b/g))
        if (
          isId(
            ({ hdid: 'deviceId', hdk: 'deviceKey', huk: 'userKey', hsk: 'serverKey' } as const)[
              m[1] as 'hdid'
            ],
            m[0],
          )
        )
          flag('Hearth identity', m[0]);
      // A pairing link with its secret, or a TURN credential.
      for (const m of text.matchAll(/[#&]s=[A-Za-z0-9_-]{8,}/g)) flag('pairing secret', m[0]);
      for (const m of text.matchAll(
        /(credential|password|secret|api[_-]?key|token)["']?\s*[:=]\s*["'][^"'\s]{8,}["']/gi,
      ))
        flag('credential literal', m[0]);
      // Long hex or base64 string literals: keys, seeds, shared secrets.
      for (const m of text.matchAll(/["'`]([0-9a-fA-F]{40,})["'`]/g))
        if (!PUBLIC_CONSTANTS.has(m[1]!)) flag('long hex literal', m[1]!);
      for (const m of text.matchAll(/["'`]([A-Za-z0-9+/_-]{40,}={0,2})["'`]/g)) {
        const s = m[1]!;
        if (PUBLIC_CONSTANTS.has(s)) continue;
        // Alphabets (base32/base64 tables) are not secrets: every character distinct and in order.
        if (new Set(s).size === s.length) continue;
        if (
          rel.endsWith('.map') &&
          /^[A-Za-z0-9+/]+$/.test(s) &&
          /[;,]/.test(text.slice(m.index - 20, m.index))
        )
          continue;
        flag('long base64 literal', s);
      }
    }
    assert.deepEqual(findings, []);
  });

  it('stays small (one bundle, no framework)', () => {
    const size = statSync(join(dist, 'app.js')).size;
    // 300 KiB before the sealed channel (issue 7), which added about 9 KiB (protocol channel.ts,
    // messages.ts); 320 KiB after relay credentials (R6) and the error registry's clip and access-log
    // codes (their descriptions ship with it; the clip and tlog code itself is tree-shaken out);
    // 384 KiB with recorded events (issue 9): the clip opener with HPKE (@hpke/core and common,
    // about 27 KiB), protocol's clip/ (8 KiB), and the timeline, player and MP4 reader (about 15 KiB);
    // 400 KiB with the blob store's signed requests and the notifications control (about 5 KiB);
    // 448 KiB with the household (issue 10): the access-log monitor from protocol tlog/ (about
    // 14 KiB, also needed by the log client), the people/invite/log/recovery screens and their
    // logic (about 27 KiB) and the QR encoder (4.5 KiB); 464 KiB with the rest of the household's
    // protocol (about 14 KiB: invite.ts, grants v2, the log wire decoder) and the log client that
    // cosigns and gossips (net/log.ts). Next step if it grows again: load the household screens on
    // demand.
    assert.ok(size < 464 * 1024, `app.js is ${size} bytes`);
  });
});
