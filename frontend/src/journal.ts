/**
 * Local journal of unsaved edits in IndexedDB, so that closing the tab (or a crash, or a dead
 * network) loses nothing: every change writes the set as it would be PUT, with the server version
 * it is based on, before autosave sends it; the entry goes once the server has that edit. On the
 * next open the editor offers to restore an entry that differs from what the server holds.
 * No DOM besides the IndexedDB API, which tests provide with fake-indexeddb.
 */
import { canonicalJson, toPayload, type Annotation } from "./store";

export type AnnotationPayload = ReturnType<typeof toPayload>;

/** One image's unsaved edits. */
export interface JournalEntry {
  image: number;
  /** Who made the edits: another user opening the image in this browser is not offered them. */
  user: string;
  /** The server version the edits are based on (the conflict check uses it when they are sent). */
  baseVersion: number;
  /** The whole set, as the PUT would send it. */
  annotations: AnnotationPayload[];
  /** Date.now() when written. */
  savedAt: number;
}

const DB_NAME = "annotator-journal";
const STORE = "edits";

function done<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

function committed(tx: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error ?? new Error("journal transaction aborted"));
  });
}

/** The IndexedDB database of journal entries, one per image id. */
export class Journal {
  private constructor(private readonly db: IDBDatabase) {}

  /**
   * null when this browser has no usable IndexedDB (private mode in some browsers) or it does not
   * answer within `timeoutMs`: the editor then works without a journal rather than not at all.
   */
  static async open(factory: IDBFactory | undefined = globalThis.indexedDB, timeoutMs = 3000): Promise<Journal | null> {
    if (!factory) return null;
    try {
      const req = factory.open(DB_NAME, 1);
      req.onupgradeneeded = () => req.result.createObjectStore(STORE, { keyPath: "image" });
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), timeoutMs)));
      const db = await Promise.race([done(req), late]);
      clearTimeout(timer);
      return db ? new Journal(db) : null;
    } catch {
      return null;
    }
  }

  async read(image: number): Promise<JournalEntry | null> {
    const tx = this.db.transaction(STORE, "readonly");
    return ((await done(tx.objectStore(STORE).get(image))) as JournalEntry | undefined) ?? null;
  }

  async write(entry: JournalEntry): Promise<void> {
    const tx = this.db.transaction(STORE, "readwrite");
    tx.objectStore(STORE).put(entry);
    await committed(tx);
  }

  async clear(image: number): Promise<void> {
    const tx = this.db.transaction(STORE, "readwrite");
    tx.objectStore(STORE).delete(image);
    await committed(tx);
  }

  close(): void {
    this.db.close();
  }
}

/** What the recorder writes: the store's state and the version it is based on, right now. */
export interface JournalSnapshot {
  revision: number;
  baseVersion: number;
  annotations: AnnotationPayload[];
}

/**
 * Writes one image's journal in order: changes (`note`) are coalesced to one write per tick,
 * `flush` issues the pending write at once (before a save is sent), and `acknowledge` clears the
 * entry when the server has the revision that was saved and nothing later was recorded.
 */
export class JournalRecorder {
  private chain: Promise<void> = Promise.resolve();
  private scheduled = false;
  /** Revision of the last snapshot handed to IndexedDB (-1: none this session). */
  private recorded = -1;
  /** Last failure, for the status bar (quota exceeded, database closed). */
  error: unknown = null;

  constructor(
    private readonly journal: Journal | null,
    private readonly image: number,
    private readonly user: string,
    private readonly snapshot: () => JournalSnapshot,
  ) {}

  /** A change happened: write it soon (this tick's other changes go in the same write). */
  note(): void {
    if (!this.journal || this.scheduled) return;
    this.scheduled = true;
    queueMicrotask(() => this.flush());
  }

  /** Write the current state now unless it is already written. */
  flush(): void {
    this.scheduled = false;
    const journal = this.journal;
    if (!journal) return;
    const snap = this.snapshot();
    if (snap.revision === this.recorded) return;
    this.recorded = snap.revision;
    const entry: JournalEntry = { image: this.image, user: this.user, baseVersion: snap.baseVersion, annotations: snap.annotations, savedAt: Date.now() };
    this.enqueue(() => journal.write(entry));
  }

  /** The server has everything up to `revision`: drop the entry unless a later change was recorded. */
  acknowledge(revision: number): void {
    const journal = this.journal;
    if (!journal || this.scheduled || this.recorded > revision) return;
    this.enqueue(async () => {
      // A change recorded after this was queued keeps its entry.
      if (this.recorded <= revision) await journal.clear(this.image);
    });
  }

  /** Drop the entry whatever was recorded (the user discarded the journaled edits). */
  discard(): void {
    const journal = this.journal;
    if (journal) this.enqueue(() => journal.clear(this.image));
  }

  read(): Promise<JournalEntry | null> {
    const journal = this.journal;
    if (!journal) return Promise.resolve(null);
    let result: JournalEntry | null = null;
    this.enqueue(async () => {
      result = await journal.read(this.image);
    });
    return this.idle().then(() => result);
  }

  /** Resolves when every change so far has reached IndexedDB (tests wait on it). */
  idle(): Promise<void> {
    if (this.scheduled) this.flush();
    return this.chain;
  }

  private enqueue(op: () => Promise<void>): void {
    this.chain = this.chain.then(op).then(
      () => {
        this.error = null;
      },
      (e: unknown) => {
        this.error = e;
      },
    );
  }
}

/** Sorted canonical form of a set, by uid: two sets with the same objects compare equal. */
function canonicalSet(items: AnnotationPayload[]): string[] {
  return items.map((a) => canonicalJson(a)).sort();
}

/** True when the journaled set holds exactly the objects the server has (nothing to restore). */
export function sameSet(journaled: AnnotationPayload[], server: Annotation[]): boolean {
  if (journaled.length !== server.length) return false;
  const a = canonicalSet(journaled), b = canonicalSet(server.map(toPayload));
  return a.every((x, i) => x === b[i]);
}
