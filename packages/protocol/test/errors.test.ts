/**
 * The error registry (`src/errors.ts`): its own rules, its sync with `docs/protocol.md` ("Errors"),
 * and the rule that every `E_…` code a product source or README names is registered.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, it } from 'node:test';
import {
  AccessError,
  ALL_ERROR_CODES,
  CLOSE,
  ConfigError,
  closeCodeFor,
  describeError,
  ERRORS,
  type ErrorClass,
  errorForClose,
  errorFromCode,
  errorInfo,
  type HearthError,
  InternalError,
  isErrorCode,
  LimitError,
  ProtocolError,
  TimeoutError,
  UnavailableError,
  VerificationError,
  type ViewerAction,
  viewerAction,
} from '../src/errors.js';
import { errorFromPeer } from '../src/pairing/index.js';
import { RENDEZVOUS_ALERT_CODES, RENDEZVOUS_ERROR_CODES } from '../src/rendezvous.js';

const root = new URL('../../../', import.meta.url).pathname;

const CLASSES: Record<ErrorClass, new (...a: never[]) => HearthError> = {
  protocol: ProtocolError,
  verification: VerificationError,
  access: AccessError,
  limit: LimitError,
  timeout: TimeoutError,
  unavailable: UnavailableError,
  config: ConfigError,
  internal: InternalError,
};
const ACTIONS: readonly ViewerAction[] = [
  'attack',
  'access',
  'retry',
  'offline',
  'camera-offline',
  'camera-unavailable',
  'fatal',
];

describe('error registry', () => {
  it('every entry: a well-formed code, a known class and action, a meaning that does not repeat the code', () => {
    assert.ok(ALL_ERROR_CODES.length > 40);
    for (const code of ALL_ERROR_CODES) {
      const e = ERRORS[code];
      assert.match(code, /^E_[A-Z0-9_]+$/);
      assert.ok(e.class in CLASSES, `${code}: class ${e.class}`);
      assert.ok(ACTIONS.includes(e.action), `${code}: action ${e.action}`);
      assert.ok(e.meaning.length > 5 && !e.meaning.includes('E_'), `${code}: meaning`);
    }
  });

  it('errorFromCode builds the subclass of the code class; messages do not repeat the code', () => {
    for (const code of ALL_ERROR_CODES) {
      const e = errorFromCode(code);
      assert.ok(e instanceof CLASSES[ERRORS[code].class], code);
      assert.equal(e.code, code);
      assert.equal(e.errorClass, ERRORS[code].class);
      assert.equal(e.message, ERRORS[code].meaning);
      assert.ok(!e.message.includes(code), code);
      const m = errorFromCode(code, 'field x must be short');
      assert.equal(m.message, 'field x must be short');
      assert.equal(describeError(m), `${code}: field x must be short`);
    }
    assert.equal((errorFromCode('E_RATE_LIMITED', 'slow down', 42) as LimitError).retryAt, 42);
    // A pairing peer's error comes back as the class of its code.
    assert.ok(errorFromPeer({ t: 'pair/error', code: 'E_PAIRING_CLOSED' }) instanceof AccessError);
    assert.ok(errorFromPeer({ t: 'pair/error', code: 'E_BAD_CONFIRMATION' }) instanceof VerificationError);
    assert.equal(describeError(new Error('plain')), 'plain');
  });

  it('verification codes are attacks, except those a viewer must handle otherwise', () => {
    // A wrong setup code fails key confirmation like a tampered message: the user may retry (the
    // device counts the attempts); the server's refusal of our own proof is not the device's attack.
    // A validly signed but stale message is a clock off, not a forgery (review R13).
    const notAttack = new Set(['E_BAD_CONFIRMATION', 'E_AUTH', 'E_CLOCK_SKEW']);
    for (const code of ALL_ERROR_CODES) {
      if (ERRORS[code].class !== 'verification' || notAttack.has(code)) continue;
      assert.equal(ERRORS[code].action, 'attack', code);
    }
    for (const code of ALL_ERROR_CODES)
      if (ERRORS[code].action === 'attack') assert.equal(ERRORS[code].class, 'verification', code);
  });

  it('lookups: unknown codes are not registered and count as fatal for the viewer', () => {
    assert.ok(isErrorCode('E_GRANT_REVOKED'));
    for (const x of ['E_NOT_CONNECTED', 'E_X', 'toString', '__proto__', '', 7, null, undefined]) {
      assert.ok(!isErrorCode(x), String(x));
      assert.equal(errorInfo(x), undefined);
      assert.equal(viewerAction(x), 'fatal');
    }
    assert.equal(viewerAction('E_CAMERA_OFFLINE'), 'camera-offline');
    assert.equal(viewerAction('E_CAMERA_UNAVAILABLE'), 'camera-unavailable');
    assert.equal(viewerAction('E_DTLS_FAILED'), 'attack');
    assert.equal(viewerAction('E_GRANT_REVOKED'), 'access');
    assert.equal(viewerAction('E_OFFLINE'), 'offline');
  });

  it('close codes: every one stands for one registered code, both ways', () => {
    const seen = new Set<string>();
    for (const close of Object.values(CLOSE)) {
      const code = errorForClose(close);
      assert.ok(code && isErrorCode(code), String(close));
      assert.ok(!seen.has(code), `${code} twice`);
      seen.add(code);
      assert.equal(closeCodeFor(code), close);
    }
    assert.equal(errorForClose(1000), undefined);
    assert.equal(errorForClose(4999), undefined);
    assert.equal(closeCodeFor('E_AUTH'), 4002);
  });

  it('rendezvous error and alert codes are registered', () => {
    for (const c of [...RENDEZVOUS_ERROR_CODES, ...RENDEZVOUS_ALERT_CODES]) assert.ok(isErrorCode(c), c);
  });
});

// ------------------------------------------------------------------ docs/protocol.md

interface DocRow {
  cls: string;
  action: string;
  meaning?: string;
}

/** The rows of the registry table in the "## Errors" section: code → class, action, meaning. */
function documentedCodes(md: string): Map<string, DocRow> {
  const start = md.indexOf('\n## Errors\n');
  assert.ok(start >= 0, 'docs/protocol.md has an "## Errors" section');
  const end = md.indexOf('\n## ', start + 1);
  const section = md.slice(start, end < 0 ? undefined : end);
  const out = new Map<string, DocRow>();
  for (const line of section.split('\n')) {
    const m = /^\| `(E_[A-Z0-9_]+)` +\| ([a-z]+) +\| `([a-z-]+)` +\|(?: [^|]*\| (.*?) +\|$)?/.exec(line);
    if (!m) continue;
    assert.ok(!out.has(m[1]!), `${m[1]} documented twice`);
    out.set(m[1]!, { cls: m[2]!, action: m[3]!, ...(m[4] !== undefined ? { meaning: m[4] } : {}) });
  }
  return out;
}

/** Registry codes missing from / wrong in / extra to the documented table. */
function compareWithDocs(docs: Map<string, DocRow>): string[] {
  const problems: string[] = [];
  for (const code of ALL_ERROR_CODES) {
    const d = docs.get(code);
    if (!d) problems.push(`${code}: not documented`);
    else if (d.cls !== ERRORS[code].class || d.action !== ERRORS[code].action)
      problems.push(
        `${code}: documented as ${d.cls}/${d.action}, registry says ${ERRORS[code].class}/${ERRORS[code].action}`,
      );
    else if (d.meaning !== ERRORS[code].meaning) problems.push(`${code}: documented meaning differs`);
  }
  for (const code of docs.keys())
    if (!isErrorCode(code)) problems.push(`${code}: documented, not in the registry`);
  return problems;
}

describe('error registry ⇄ docs/protocol.md', () => {
  const md = readFileSync(join(root, 'docs/protocol.md'), 'utf8');

  it('every registry code is documented with its class, action and meaning, and nothing else is', () => {
    assert.deepEqual(compareWithDocs(documentedCodes(md)), []);
  });

  it('control: the comparison catches a missing, a wrong and an extra row', () => {
    const docs = documentedCodes(md);
    const broken = new Map(docs);
    broken.delete('E_NO_GRANT');
    broken.set('E_CAMERA_OFFLINE', { ...docs.get('E_CAMERA_OFFLINE')!, action: 'retry' });
    broken.set('E_GRANT_REVOKED', { ...docs.get('E_GRANT_REVOKED')!, meaning: 'grant gone' });
    broken.set('E_NOT_CONNECTED', { cls: 'unavailable', action: 'offline' });
    assert.deepEqual(compareWithDocs(broken), [
      'E_NO_GRANT: not documented',
      'E_GRANT_REVOKED: documented meaning differs',
      'E_CAMERA_OFFLINE: documented as unavailable/retry, registry says unavailable/camera-offline',
      'E_NOT_CONNECTED: documented, not in the registry',
    ]);
  });

  it('the close-code table matches CLOSE and the registry', () => {
    const rows = [...md.matchAll(/^ *\| (\d{4}) +\| `([A-Z_]+)` +\| `(E_[A-Z0-9_]+)` +\|/gm)];
    assert.equal(rows.length, Object.keys(CLOSE).length);
    for (const [, n, name, code] of rows) {
      assert.equal(CLOSE[name as keyof typeof CLOSE], Number(n), name);
      assert.equal(errorForClose(Number(n)), code, n);
    }
  });
});

// ------------------------------------------------------------------ sources and READMEs

/** Every `E_…` token in `text` (string literals, comments, docs). */
function codesIn(text: string): string[] {
  return [...text.matchAll(/\bE_[A-Z][A-Z0-9_]*\b/g)].map((m) => m[0]);
}

function files(dir: string, re: RegExp, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'dist') continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) files(p, re, out);
    else if (re.test(name)) out.push(p);
  }
  return out;
}

/** Product sources (every package's src/ and bin/) and the READMEs and design docs. */
function productFiles(): string[] {
  const out: string[] = [];
  const pkgs = join(root, 'packages');
  for (const p of readdirSync(pkgs)) {
    for (const sub of ['src', 'bin']) {
      const d = join(pkgs, p, sub);
      try {
        if (statSync(d).isDirectory()) files(d, /\.(ts|js|mjs|md)$/, out);
      } catch {
        // no such folder
      }
    }
    const readme = join(pkgs, p, 'README.md');
    try {
      statSync(readme);
      out.push(readme);
    } catch {
      // none
    }
  }
  for (const f of ['README.md', 'SECURITY.md']) out.push(join(root, f));
  files(join(root, 'docs'), /\.md$/, out);
  return out;
}

describe('every code the product names is registered', () => {
  it('agent, server, relay, cli, viewer, protocol sources and the READMEs name registered codes only', () => {
    const all = productFiles();
    const unknown: string[] = [];
    let found = 0;
    for (const f of all) {
      for (const c of codesIn(readFileSync(f, 'utf8'))) {
        found++;
        if (!isErrorCode(c)) unknown.push(`${relative(root, f)}: ${c}`);
      }
    }
    assert.deepEqual(unknown, []);
    // The scan saw the packages it is about (a scan of nothing would pass).
    const seen = new Set(all.flatMap((f) => codesIn(readFileSync(f, 'utf8'))));
    for (const c of [
      'E_TAG_TAKEN',
      'E_STUN_DECODE',
      'E_USAGE',
      'E_CAMERA_OFFLINE',
      'E_DTLS_FAILED',
      'E_WEBRTC',
    ])
      assert.ok(seen.has(c), `scan found ${c}`);
    assert.ok(found > 200, `found ${found} codes`);
  });

  it('control: an unregistered literal is caught', () => {
    const src = `throw new X('E_BOGUS', 'm'); send({ code: "E_MEDIA_FAILED" }); // E_GRANT_REVOKED`;
    assert.deepEqual(
      codesIn(src).filter((c) => !isErrorCode(c)),
      ['E_BOGUS', 'E_MEDIA_FAILED'],
    );
  });
});
