/**
 * A minimal promise wrapper over IndexedDB: one database, a few object stores, get/put/delete/all.
 * CryptoKey objects are stored by structured clone, so non-extractable keys stay non-extractable.
 */

/** Database name and version. Bump the version and extend {@link upgrade} to add stores. */
export const DB_NAME = 'hearth';
export const DB_VERSION = 1;
/** Object stores: `keys` (out-of-line keys), `devices` (keyPath `deviceId`). */
export type StoreName = 'keys' | 'devices';

function upgrade(db: IDBDatabase): void {
  if (!db.objectStoreNames.contains('keys')) db.createObjectStore('keys');
  if (!db.objectStoreNames.contains('devices')) db.createObjectStore('devices', { keyPath: 'deviceId' });
}

function req<T>(r: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error ?? new Error('IndexedDB request failed'));
  });
}

/** An open database. */
export class Db {
  private constructor(private readonly db: IDBDatabase) {}

  /** Open (and create or upgrade) the database. */
  static open(factory: IDBFactory = indexedDB, name = DB_NAME): Promise<Db> {
    return new Promise((resolve, reject) => {
      const r = factory.open(name, DB_VERSION);
      r.onupgradeneeded = () => upgrade(r.result);
      r.onsuccess = () => resolve(new Db(r.result));
      r.onerror = () => reject(r.error ?? new Error('cannot open IndexedDB'));
      r.onblocked = () => reject(new Error('IndexedDB upgrade blocked by another tab'));
    });
  }

  private async tx<T>(
    store: StoreName,
    mode: IDBTransactionMode,
    f: (s: IDBObjectStore) => IDBRequest<T>,
  ): Promise<T> {
    const t = this.db.transaction(store, mode);
    const done = new Promise<void>((resolve, reject) => {
      t.oncomplete = () => resolve();
      t.onabort = t.onerror = () => reject(t.error ?? new Error('IndexedDB transaction failed'));
    });
    const v = await req(f(t.objectStore(store)));
    await done;
    return v;
  }

  get<T>(store: StoreName, key: IDBValidKey): Promise<T | undefined> {
    return this.tx(store, 'readonly', (s) => s.get(key) as IDBRequest<T | undefined>);
  }

  /** Insert only: fails (ConstraintError) if the key exists. Used so two tabs cannot both create a key. */
  async add(store: StoreName, value: unknown, key?: IDBValidKey): Promise<void> {
    await this.tx(store, 'readwrite', (s) => s.add(value, key));
  }

  async put(store: StoreName, value: unknown, key?: IDBValidKey): Promise<void> {
    await this.tx(store, 'readwrite', (s) => s.put(value, key));
  }

  async delete(store: StoreName, key: IDBValidKey): Promise<void> {
    await this.tx(store, 'readwrite', (s) => s.delete(key));
  }

  all<T>(store: StoreName): Promise<T[]> {
    return this.tx(store, 'readonly', (s) => s.getAll() as IDBRequest<T[]>);
  }

  close(): void {
    this.db.close();
  }
}
