import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  classifyPath,
  framesDecoded,
  remoteCertificateFingerprint,
  selectedCandidatePair,
} from '../src/core/stats.js';

const FP = 'AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89';

/** A Chromium-shaped report: the transport names the selected pair and the remote certificate. */
function chromium(localType: string, remoteType: string) {
  return new Map<string, Record<string, unknown>>([
    [
      'T01',
      {
        id: 'T01',
        type: 'transport',
        selectedCandidatePairId: 'CP1',
        remoteCertificateId: 'CFr',
        dtlsState: 'connected',
      },
    ],
    [
      'CP0',
      {
        id: 'CP0',
        type: 'candidate-pair',
        localCandidateId: 'L0',
        remoteCandidateId: 'R0',
        state: 'failed',
        nominated: false,
      },
    ],
    [
      'CP1',
      {
        id: 'CP1',
        type: 'candidate-pair',
        localCandidateId: 'L1',
        remoteCandidateId: 'R1',
        state: 'succeeded',
        nominated: true,
      },
    ],
    ['L0', { id: 'L0', type: 'local-candidate', candidateType: 'relay', protocol: 'udp' }],
    ['R0', { id: 'R0', type: 'remote-candidate', candidateType: 'relay' }],
    [
      'L1',
      {
        id: 'L1',
        type: 'local-candidate',
        candidateType: localType,
        protocol: 'udp',
        relayProtocol: localType === 'relay' ? 'tcp' : undefined,
      },
    ],
    ['R1', { id: 'R1', type: 'remote-candidate', candidateType: remoteType }],
    [
      'CFr',
      { id: 'CFr', type: 'certificate', fingerprint: FP.toLowerCase(), fingerprintAlgorithm: 'SHA-256' },
    ],
    ['IV', { id: 'IV', type: 'inbound-rtp', kind: 'video', framesDecoded: 42 }],
    ['IA', { id: 'IA', type: 'inbound-rtp', kind: 'audio' }],
  ]);
}

describe('getStats classification', () => {
  // [case id, local type, remote type, path]
  const cases: [string, string, string, 'direct' | 'relayed'][] = [
    ['host-host', 'host', 'host', 'direct'],
    ['srflx-srflx (hole punched)', 'srflx', 'srflx', 'direct'],
    ['prflx-host', 'prflx', 'host', 'direct'],
    ['our TURN', 'relay', 'srflx', 'relayed'],
    ['their TURN', 'host', 'relay', 'relayed'],
    ['both TURN', 'relay', 'relay', 'relayed'],
  ];
  for (const [id, l, r, want] of cases) {
    it(`Chromium shape: ${id}`, () => {
      const p = classifyPath(chromium(l, r));
      assert.equal(p?.path, want, id);
      assert.equal(p?.localType, l);
      assert.equal(p?.remoteType, r);
    });
  }

  it('reads relayProtocol (TURN over TCP/TLS)', () => {
    assert.equal(classifyPath(chromium('relay', 'host'))?.relayProtocol, 'tcp');
  });

  it('Firefox shape: no transport entry, pair flagged selected', () => {
    const report = [
      {
        id: 'p1',
        type: 'candidate-pair',
        localCandidateId: 'a',
        remoteCandidateId: 'b',
        selected: false,
        nominated: true,
        state: 'succeeded',
      },
      {
        id: 'p2',
        type: 'candidate-pair',
        localCandidateId: 'c',
        remoteCandidateId: 'd',
        selected: true,
        nominated: true,
        state: 'succeeded',
      },
      { id: 'a', type: 'local-candidate', candidateType: 'host' },
      { id: 'b', type: 'remote-candidate', candidateType: 'host' },
      { id: 'c', type: 'local-candidate', candidateType: 'relay' },
      { id: 'd', type: 'remote-candidate', candidateType: 'host' },
    ];
    assert.equal(selectedCandidatePair(report)?.id, 'p2');
    assert.equal(classifyPath(report)?.path, 'relayed');
  });

  it('fallback: a nominated succeeded pair', () => {
    const report = [
      {
        id: 'p1',
        type: 'candidate-pair',
        localCandidateId: 'a',
        remoteCandidateId: 'b',
        nominated: true,
        state: 'succeeded',
      },
      { id: 'a', type: 'local-candidate', candidateType: 'srflx' },
      { id: 'b', type: 'remote-candidate', candidateType: 'host' },
    ];
    assert.equal(classifyPath(report)?.path, 'direct');
  });

  it('undefined until a pair is selected and both candidates are known', () => {
    assert.equal(classifyPath([]), undefined);
    assert.equal(
      classifyPath([{ id: 'p', type: 'candidate-pair', nominated: false, state: 'in-progress' }]),
      undefined,
    );
    const m = chromium('host', 'host');
    m.delete('R1');
    assert.equal(classifyPath(m), undefined);
  });

  it('ignores junk entries', () => {
    assert.equal(classifyPath([null, 1, 'x', { id: 3 }, { type: 'transport' }]), undefined);
  });

  it('remote certificate fingerprint, normalised to SDP form', () => {
    assert.deepEqual(remoteCertificateFingerprint(chromium('host', 'host')), {
      algorithm: 'sha-256',
      value: FP,
    });
    assert.equal(remoteCertificateFingerprint([{ id: 't', type: 'transport' }]), undefined);
  });

  it('frames decoded: video inbound-rtp only', () => {
    assert.equal(framesDecoded(chromium('host', 'host')), 42);
    assert.equal(framesDecoded([{ id: 'x', type: 'inbound-rtp', mediaType: 'video', framesDecoded: 7 }]), 7);
    assert.equal(framesDecoded([]), 0);
  });
});
