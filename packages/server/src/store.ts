/**
 * The server's SQLite store (better-sqlite3). It keeps only what the rendezvous needs (S8):
 * device IDs with first/last seen times, and the count of failed attempts to claim each device ID
 * since the device last heard about them. No names, no emails, no keys of viewers.
 */
import { join } from 'node:path';
import Database from 'better-sqlite3';

const MIGRATIONS: string[] = [
  `CREATE TABLE devices (
     id TEXT PRIMARY KEY,
     first_seen INTEGER NOT NULL,
     last_seen INTEGER NOT NULL
   ) STRICT;
   CREATE TABLE impostors (
     id TEXT PRIMARY KEY,
     count INTEGER NOT NULL,
     last_at INTEGER NOT NULL
   ) STRICT;`,
];

/** Most distinct device IDs with pending impostor counts (bounds what an attacker can make us store). */
export const MAX_IMPOSTOR_ROWS = 100_000;

export class Store {
  private readonly db: Database.Database;
  private readonly q;

  constructor(dataDir: string, file = 'hearth.db') {
    this.db = new Database(join(dataDir, file));
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('busy_timeout = 2000');
    this.migrate();
    this.q = {
      seen: this.db.prepare(
        'INSERT INTO devices (id, first_seen, last_seen) VALUES (?, ?, ?) ON CONFLICT(id) DO UPDATE SET last_seen = excluded.last_seen',
      ),
      device: this.db.prepare(
        'SELECT first_seen AS firstSeen, last_seen AS lastSeen FROM devices WHERE id = ?',
      ),
      devices: this.db.prepare('SELECT COUNT(*) AS n FROM devices'),
      bump: this.db.prepare(
        'INSERT INTO impostors (id, count, last_at) VALUES (?, 1, ?) ON CONFLICT(id) DO UPDATE SET count = count + 1, last_at = excluded.last_at RETURNING count',
      ),
      impostorRows: this.db.prepare('SELECT COUNT(*) AS n FROM impostors'),
      pruneImpostors: this.db.prepare(
        'DELETE FROM impostors WHERE id IN (SELECT id FROM impostors ORDER BY last_at ASC LIMIT ?)',
      ),
      take: this.db.prepare('DELETE FROM impostors WHERE id = ? RETURNING count'),
      peek: this.db.prepare('SELECT count FROM impostors WHERE id = ?'),
    };
  }

  private migrate(): void {
    this.db.exec(
      'CREATE TABLE IF NOT EXISTS migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL) STRICT',
    );
    const row = this.db.prepare('SELECT MAX(version) AS v FROM migrations').get() as { v: number | null };
    const have = row.v ?? 0;
    for (let v = have + 1; v <= MIGRATIONS.length; v++) {
      this.db.transaction(() => {
        this.db.exec(MIGRATIONS[v - 1]!);
        this.db.prepare('INSERT INTO migrations (version, applied_at) VALUES (?, ?)').run(v, Date.now());
      })();
    }
  }

  /** Schema version. */
  get version(): number {
    return (this.db.prepare('SELECT MAX(version) AS v FROM migrations').get() as { v: number }).v;
  }

  /** A device authenticated (or is still connected): record first/last seen. */
  deviceSeen(id: string, now: number): void {
    this.q.seen.run(id, now, now);
  }

  device(id: string): { firstSeen: number; lastSeen: number } | undefined {
    return this.q.device.get(id) as { firstSeen: number; lastSeen: number } | undefined;
  }

  deviceCount(): number {
    return (this.q.devices.get() as { n: number }).n;
  }

  /** Count one failed attempt to claim `id`; returns the pending count. */
  countImpostor(id: string, now: number): number {
    const n = (this.q.impostorRows.get() as { n: number }).n;
    if (n >= MAX_IMPOSTOR_ROWS) this.q.pruneImpostors.run(Math.max(1, n - MAX_IMPOSTOR_ROWS + 1));
    return (this.q.bump.get(id, now) as { count: number }).count;
  }

  /** Pending failed attempts for `id`, without resetting. */
  impostors(id: string): number {
    return (this.q.peek.get(id) as { count: number } | undefined)?.count ?? 0;
  }

  /** Take (and reset) the pending failed attempts for `id`. */
  takeImpostors(id: string): number {
    return (this.q.take.get(id) as { count: number } | undefined)?.count ?? 0;
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
