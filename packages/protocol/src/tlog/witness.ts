/**
 * The owner's side of the access log: a witness that keeps the last checkpoint it verified and
 * accepts a new one only when it extends that one, and the checks on the entries it fetches.
 *
 * What each check catches (every failure is a VerificationError, a possible attack):
 *
 * - E_LOG_ROLLBACK: the checkpoint is smaller than the one already verified (an older one served);
 * - E_LOG_FORK: same size and another root, or no valid consistency proof to the verified one (two
 *   histories; also what {@link compareCheckpoints} reports when two witnesses gossip);
 * - E_LOG_PROOF: an entry's inclusion proof fails, or the entries do not cover the range they claim
 *   (an entry dropped, reordered, altered or inserted);
 * - E_BAD_BINDING: a checkpoint of another log; E_WRONG_SIGNER / E_BAD_SIGNATURE: not signed by the
 *   device key (from note.ts).
 *
 * And `MemoryLog`, an in-memory log for the device side and for tests: leaves, checkpoints, proofs.
 */
import { constantTimeEqual } from '../bytes.js';
import type { Signer } from '../crypto/primitives.js';
import { VerificationError } from '../errors.js';
import { type Checkpoint, openCheckpoint, signCheckpoint } from './checkpoint.js';
import { addCosignature, cosign } from './cosignature.js';
import {
  consistencyProof,
  inclusionProof,
  leafHash,
  MAX_TREE_SIZE,
  treeHead,
  verifyConsistency,
  verifyInclusion,
} from './merkle.js';

/**
 * Check that `next` extends `old` (the last verified checkpoint; undefined on first contact, which
 * is trust on first use) with `proof`, the consistency proof from old.size to next.size.
 */
export async function verifyAdvance(
  old: Checkpoint | undefined,
  next: Checkpoint,
  proof: readonly Uint8Array[],
): Promise<void> {
  if (!old) return;
  if (next.origin !== old.origin)
    throw new VerificationError('E_BAD_BINDING', 'checkpoint is of another log than the verified one');
  if (next.size < old.size)
    throw new VerificationError(
      'E_LOG_ROLLBACK',
      `checkpoint of size ${next.size} is older than the verified size ${old.size}`,
    );
  if (next.size === old.size) {
    if (!constantTimeEqual(next.root, old.root))
      throw new VerificationError('E_LOG_FORK', `two checkpoints of size ${next.size} with different roots`);
    return;
  }
  if (!(await verifyConsistency(old.size, next.size, old.root, next.root, proof)))
    throw new VerificationError(
      'E_LOG_FORK',
      `no valid consistency proof from size ${old.size} to size ${next.size}`,
    );
}

/**
 * Gossip: two witnesses (two of the owners' devices) compare the checkpoints they verified, with the
 * consistency proof the log serves between them. Raises E_LOG_FORK when they cannot be one history.
 */
export async function compareCheckpoints(
  a: Checkpoint,
  b: Checkpoint,
  proof: readonly Uint8Array[],
): Promise<void> {
  if (a.origin !== b.origin)
    throw new VerificationError('E_BAD_BINDING', 'checkpoints of two different logs');
  const [small, large] = a.size <= b.size ? [a, b] : [b, a];
  await verifyAdvance(small, large, proof);
}

/** Entries fetched from the log: leaf data from index `start` on, each with its inclusion proof. */
export interface FetchedEntries {
  readonly start: number;
  readonly entries: readonly Uint8Array[];
  readonly proofs: readonly (readonly Uint8Array[])[];
}

/** Check each fetched entry's inclusion proof in `cp`, at the index it claims. Raises E_LOG_PROOF. */
export async function verifyEntries(cp: Checkpoint, fetched: FetchedEntries): Promise<void> {
  const { start, entries, proofs } = fetched;
  if (!Number.isSafeInteger(start) || start < 0 || start + entries.length > cp.size)
    throw new VerificationError('E_LOG_PROOF', 'entries outside the checkpoint');
  if (proofs.length !== entries.length)
    throw new VerificationError('E_LOG_PROOF', 'not one inclusion proof per entry');
  for (let i = 0; i < entries.length; i++) {
    const h = await leafHash(entries[i]!);
    if (!(await verifyInclusion(start + i, cp.size, h, proofs[i]!, cp.root)))
      throw new VerificationError('E_LOG_PROOF', `entry ${start + i} is not in the log at that index`);
  }
}

/**
 * Check that `fetched` is exactly the log's entries `from`..`cp.size - 1` (the ones new since the
 * last verified size): the range starts at `from` and ends at the checkpoint's size, so none can be
 * left out, and each has a valid inclusion proof at its index. Raises E_LOG_PROOF.
 */
export async function verifyEntryRange(cp: Checkpoint, fetched: FetchedEntries, from: number): Promise<void> {
  if (fetched.start !== from || fetched.start + fetched.entries.length !== cp.size)
    throw new VerificationError(
      'E_LOG_PROOF',
      `entries ${fetched.start}..${fetched.start + fetched.entries.length} do not cover ${from}..${cp.size}`,
    );
  await verifyEntries(cp, fetched);
}

/** Check that `entries` are exactly the log's leaves 0..cp.size-1: recompute the root. Raises E_LOG_PROOF. */
export async function verifyAllEntries(cp: Checkpoint, entries: readonly Uint8Array[]): Promise<void> {
  if (entries.length !== cp.size)
    throw new VerificationError('E_LOG_PROOF', `${entries.length} entries for a log of ${cp.size}`);
  const root = await treeHead(await Promise.all(entries.map(leafHash)));
  if (!constantTimeEqual(root, cp.root))
    throw new VerificationError('E_LOG_PROOF', 'the entries do not hash to the checkpoint root');
}

/** A witness of one device's log: the last checkpoint it verified, advanced only by valid updates. */
export class LogWitness {
  private state: Checkpoint | undefined;
  constructor(
    /** `hearth/<deviceId>`. */
    readonly origin: string,
    /** The device key pinned at pairing. */
    readonly publicKey: Uint8Array,
    state?: Checkpoint,
  ) {
    this.state = state;
  }

  /** The last verified checkpoint (undefined before the first). */
  get checkpoint(): Checkpoint | undefined {
    return this.state;
  }

  /**
   * Verify a signed checkpoint, its consistency with the last verified one, and (when given) the
   * entries fetched with it; a new entry range must start at the old size and reach the new size,
   * so no entry can be left out. The state changes only when every check passes.
   */
  async advance(
    note: string | Uint8Array,
    consistency: readonly Uint8Array[],
    fetched?: FetchedEntries,
  ): Promise<Checkpoint> {
    const next = await openCheckpoint(note, this.origin, this.publicKey);
    await verifyAdvance(this.state, next, consistency);
    if (fetched) await verifyEntryRange(next, fetched, this.state?.size ?? 0);
    this.state = next;
    return next;
  }

  /**
   * {@link advance}, then cosign the checkpoint (C2SP `cosignature/v1`, cosignature.ts) as the
   * witness `name` with `signer` at `time` (POSIX seconds): returns the note with the cosignature
   * line appended. Nothing is cosigned unless every check of `advance` passed.
   */
  async advanceAndCosign(
    note: string | Uint8Array,
    consistency: readonly Uint8Array[],
    fetched: FetchedEntries | undefined,
    cosigner: { readonly name: string; readonly signer: Signer },
    time: number,
  ): Promise<string> {
    const cp = await this.advance(note, consistency, fetched);
    return addCosignature(note, await cosign(cp, cosigner.name, cosigner.signer, time));
  }
}

/** An in-memory log: the device's side (append, sign checkpoints, serve proofs) with no storage. */
export class MemoryLog {
  private readonly leaves: Uint8Array[] = [];
  private readonly data: Uint8Array[] = [];
  constructor(
    readonly origin: string,
    private readonly signer: Signer,
  ) {}

  get size(): number {
    return this.leaves.length;
  }

  /** Append leaf data; returns its index. */
  async append(data: Uint8Array): Promise<number> {
    if (this.leaves.length >= MAX_TREE_SIZE) throw new RangeError('log full');
    this.leaves.push(await leafHash(data));
    this.data.push(data.slice());
    return this.leaves.length - 1;
  }

  /** The leaf data at `index`. */
  entry(index: number): Uint8Array {
    const d = this.data[index];
    if (!d) throw new RangeError('no such entry');
    return d.slice();
  }

  /** The checkpoint at `size` (default: now). */
  async checkpoint(size = this.size): Promise<Checkpoint> {
    return { origin: this.origin, size, root: await treeHead(this.leaves, size), extensions: [] };
  }

  /** The signed checkpoint at `size` (default: now). */
  async signedCheckpoint(size = this.size): Promise<string> {
    return signCheckpoint(await this.checkpoint(size), this.signer);
  }

  inclusionProof(index: number, size = this.size): Promise<Uint8Array[]> {
    return inclusionProof(this.leaves, index, size);
  }

  consistencyProof(size1: number, size2 = this.size): Promise<Uint8Array[]> {
    return consistencyProof(this.leaves, size1, size2);
  }

  /** Entries [start, size) with their inclusion proofs in the tree of `size`. */
  async fetch(start: number, size = this.size): Promise<FetchedEntries> {
    const entries: Uint8Array[] = [];
    const proofs: Uint8Array[][] = [];
    for (let i = start; i < size; i++) {
      entries.push(this.entry(i));
      proofs.push(await this.inclusionProof(i, size));
    }
    return { start, entries, proofs };
  }
}
