/**
 * Autosave: saves the annotation set ~1 s after the last change, tracks a visible save state,
 * retries failed saves with exponential backoff and never overwrites someone else's save
 * silently (409 -> "conflict", resolved only by an explicit user choice). A save sends what changed
since the set the server last acknowledged (a PATCH: the changed objects, the deleted uids, the
order of the set); the whole set goes (a PUT) when the base is not that set ("keep mine" after a
conflict, edits restored from the journal onto another version).
 *
 * Work is never blocked: geometries the server normalised ("repaired") are taken over in place,
 * and an object the server refuses (a 400 naming it) is held back — the set is sent again at once
 * with the server's copy of that object (or without it, when it is new), so everything else keeps
 * saving. A held-back object is tried again as soon as it is edited. Every change is written to
 * the local journal before it is sent.
 */
import { ApiError, NetworkError, api, errorText, refusedObject, type Repair, type SetPatch } from "./api";
import { shortTime } from "./format";
import type { JournalRecorder } from "./journal";
import { toPayload, type Annotation, type AnnotationStore } from "./store";

export type SaveState = "saved" | "saving" | "unsaved" | "offline" | "conflict" | "error" | "held";

export interface ConflictInfo {
  detail: string;
  current_version: number;
  updated_by: string;
  updated_at: string;
}

/** An object the server refused, as the user has it: kept locally, not sent until edited. */
export interface HeldBack {
  uid: string;
  /** Plain words for the status bar. */
  reason: string;
  /** The refused version; an edit replaces it in the store and makes the object go again. */
  annotation: Annotation;
}

export interface AutosaveHooks {
  onState(state: SaveState, reason: string): void;
  onConflict(info: ConflictInfo): void;
  onSaved(version: number): void;
  /** The server normalised these objects and the store now holds its geometries. */
  onRepaired?(repairs: Repair[]): void;
  /** The held-back objects changed; `latest` is the one just refused (null when one was accepted or deleted). */
  onHeld?(held: HeldBack[], latest: HeldBack | null): void;
}

type Payload = ReturnType<typeof toPayload>;

export class Autosaver {
  state: SaveState = "saved";
  reason = "";
  version: number;
  private savedRevision: number;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private inFlight: Promise<boolean> | null = null;
  private attempt = 0;
  private conflict: ConflictInfo | null = null;
  /** A 400 not naming an object ("this data is invalid"): retrying it is pointless until it changes. */
  private rejectedRevision = -1;
  /** The objects as the server last stored them, by uid: stand-ins for held-back objects. */
  private acked = new Map<string, Payload>();
  /** The store object each acknowledged one was sent from (null: the server's own copy went): an
   * object is unchanged while the store still holds that very object (edits replace objects). */
  private ackedSources = new Map<string, Annotation | null>();
  /** The version the acknowledged set is (a PATCH is based on it, else the whole set goes). */
  private ackedVersion: number;
  private held = new Map<string, HeldBack>();
  private readonly journal: JournalRecorder | null;
  readonly delayMs: number;

  constructor(
    private readonly imageId: number,
    version: number,
    private readonly store: AnnotationStore,
    private readonly hooks: AutosaveHooks,
    opts: { delayMs?: number; journal?: JournalRecorder } = {},
  ) {
    this.version = version;
    this.ackedVersion = version;
    this.savedRevision = store.revision;
    this.delayMs = opts.delayMs ?? 1000;
    this.journal = opts.journal ?? null;
    this.rememberServerSet(version, store.all().map(toPayload), store.all());
    this.unsubscribe = store.subscribe((e) => {
      // Loads are the server's state and repairs are what the server stored: nothing to send.
      if (e.cause === "load" || e.cause === "repair") return;
      this.changed();
    });
    globalThis.addEventListener?.("online", this.onOnline);
  }

  private readonly unsubscribe: () => void;
  private readonly onOnline = (): void => {
    if (this.state === "offline") this.schedule(0);
  };

  /** Stop listening and cancel a scheduled save (the editor is being torn down). */
  dispose(): void {
    this.unsubscribe();
    globalThis.removeEventListener?.("online", this.onOnline);
    this.clearTimer();
  }

  /** Local changes the server does not have yet (held-back objects included). */
  get dirty(): boolean {
    return this.store.revision !== this.savedRevision;
  }

  /** Objects kept locally because the server refused them. */
  heldBack(): HeldBack[] {
    return [...this.held.values()];
  }

  /** Why the server refused this object, or null when it is not held back. */
  heldReason(uid: string): string | null {
    return this.held.get(uid)?.reason ?? null;
  }

  /** Called after a store change (also after "load their version", with the new base version). */
  changed(): void {
    this.journal?.note();
    if (this.conflict) return; // stay in conflict until the user decides
    this.setState("unsaved", "");
    this.attempt = 0;
    this.schedule(this.delayMs);
  }

  /** The store now holds the server's set at `version` (initial load, "load their version"). */
  resetBase(version: number): void {
    this.version = version;
    this.savedRevision = this.store.revision;
    this.conflict = null;
    this.attempt = 0;
    this.rememberServerSet(version, this.store.all().map(toPayload), this.store.all());
    if (this.held.size) {
      this.held.clear();
      this.hooks.onHeld?.([], null);
    }
    this.clearTimer();
    this.journal?.acknowledge(this.store.revision);
    this.setState("saved", "");
  }

  /** Base the next save on `version` (restoring journaled edits made on that version). */
  rebase(version: number): void {
    this.version = version;
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private schedule(ms: number): void {
    this.clearTimer();
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.saveNow();
    }, ms);
  }

  /** Save immediately (Ctrl+S, before submit). Resolves true when everything is saved. */
  async saveNow(): Promise<boolean> {
    this.clearTimer();
    if (this.inFlight) {
      await this.inFlight;
      if (!this.dirty) return this.held.size === 0;
    }
    if (this.conflict) return false;
    if (!this.dirty) {
      this.settle();
      return this.held.size === 0;
    }
    this.inFlight = this.put(this.version);
    try {
      return await this.inFlight;
    } finally {
      this.inFlight = null;
    }
  }

  /** "Keep mine": overwrite the other person's save, knowingly, by basing on their version. */
  async overwrite(): Promise<boolean> {
    if (!this.conflict) return this.saveNow();
    const base = this.conflict.current_version;
    this.conflict = null;
    this.version = base;
    this.inFlight = this.put(base);
    try {
      return await this.inFlight;
    } finally {
      this.inFlight = null;
    }
  }

  /**
   * The set to send: every object as the store has it, except held-back objects that were not
   * edited since they were refused — for those the server's own copy goes (so a PUT that replaces
   * the whole set does not delete them there), or nothing when the server never had them.
   * `sources[i]` is the store object `items[i]` came from (null for a server copy).
   */
  private payload(): { items: Payload[]; sources: (Annotation | null)[] } {
    const items: Payload[] = [];
    const sources: (Annotation | null)[] = [];
    for (const a of this.store.all()) {
      const h = this.held.get(a.uid);
      if (h && h.annotation === a) {
        const theirs = this.acked.get(a.uid);
        if (theirs) {
          items.push(theirs);
          sources.push(null);
        }
        continue;
      }
      items.push(toPayload(a));
      sources.push(a);
    }
    return { items, sources };
  }

  private async put(baseVersion: number): Promise<boolean> {
    const revision = this.store.revision;
    if (revision === this.rejectedRevision) return false;
    this.journal?.flush(); // on disk before it goes out
    this.dropDeletedHeld();
    this.setState("saving", "");
    let whole = baseVersion !== this.ackedVersion;
    // Each refusal holds one more object back and sends again, so this ends.
    for (;;) {
      const { items, sources } = this.payload();
      try {
        const res = whole
          ? await api.saveAnnotations(this.imageId, baseVersion, items)
          : await api.patchAnnotations(this.imageId, baseVersion, this.changes(items, sources));
        return this.saved(revision, res.version, res.repaired ?? [], items, sources);
      } catch (e) {
        if (e instanceof ApiError && e.status === 400 && this.holdBack(e, items, sources)) continue;
        if (e instanceof ApiError && e.status === 400 && e.body.code === "patch_mismatch" && !whole) {
          // A patch the server finds does not fit its set (this editor's idea of it went wrong):
          // the whole set says the same without relying on it.
          whole = true;
          continue;
        }
        return this.failed(e, revision);
      }
    }
  }

  private saved(revision: number, version: number, repairs: Repair[], items: Payload[], sources: (Annotation | null)[]): boolean {
    this.version = version;
    this.savedRevision = revision;
    this.attempt = 0;
    const applied = this.applyRepairs(repairs, items, sources);
    this.rememberServerSet(version, items, sources);
    // A held-back object that went in edited was accepted this time.
    let released = false;
    for (const a of sources) {
      const h = a && this.held.get(a.uid);
      if (h && h.annotation !== a) {
        this.held.delete(a.uid);
        released = true;
      }
    }
    this.hooks.onSaved(version);
    if (applied.length) this.hooks.onRepaired?.(applied);
    if (released) this.hooks.onHeld?.(this.heldBack(), null);
    if (this.dirty) {
      // Edits made while the request was in flight still need saving.
      this.setState("unsaved", "");
      this.schedule(this.delayMs);
      return false;
    }
    this.settle();
    return this.held.size === 0;
  }

  /** Nothing is waiting to be sent: "saved", or "held" while the server refuses some objects. */
  private settle(): void {
    if (!this.held.size) {
      this.journal?.acknowledge(this.store.revision);
      this.setState("saved", "");
      return;
    }
    // The journal keeps the held-back objects: they exist nowhere else.
    const n = this.held.size;
    this.setState("held", `${n} object${n === 1 ? "" : "s"} not saved`);
  }

  /**
   * Take over the geometries the server stored for objects it normalised, where the store still
   * holds the version that was sent (an object edited meanwhile goes again with the next save).
   */
  private applyRepairs(repairs: Repair[], items: Payload[], sources: (Annotation | null)[]): Repair[] {
    const applied: Repair[] = [];
    for (const r of repairs) {
      let i = items[r.index]?.uid === r.uid ? r.index : items.findIndex((x) => x.uid === r.uid);
      if (i < 0 || !r.geometry) continue;
      items[i] = { ...items[i], geometry: r.geometry };
      const source = sources[i];
      if (source && this.store.patch(r.uid, source, r.geometry)) {
        sources[i] = this.store.get(r.uid)!;
        applied.push(r);
      }
    }
    return applied;
  }

  private rememberServerSet(version: number, items: Payload[], sources: (Annotation | null)[]): void {
    this.ackedVersion = version;
    this.acked = new Map(items.map((p) => [p.uid, p]));
    this.ackedSources = new Map(items.map((p, i) => [p.uid, sources[i]]));
  }

  /** The set to send, as what changed since the acknowledged one (a server copy never changed). */
  private changes(items: Payload[], sources: (Annotation | null)[]): SetPatch {
    const changed = items.filter((p, i) => sources[i] !== null && this.ackedSources.get(p.uid) !== sources[i]);
    const present = new Set(items.map((p) => p.uid));
    const removed = [...this.acked.keys()].filter((uid) => !present.has(uid));
    return { changed, removed, order: items.map((p) => p.uid) };
  }

  /** A 400 naming one object of this set: hold it back and say so. False: not that kind of 400. */
  private holdBack(e: ApiError, items: Payload[], sources: (Annotation | null)[]): boolean {
    const ref = refusedObject(e.body);
    if (!ref) return false;
    let i = ref.uid ? items.findIndex((x) => x.uid === ref.uid) : -1;
    if (i < 0 && ref.uid === "" && ref.index < items.length) i = ref.index;
    const a = i >= 0 ? sources[i] : null;
    // A server copy that is refused (say its label was deleted) cannot be held back any further.
    if (!a) return false;
    const h: HeldBack = { uid: a.uid, reason: ref.reason, annotation: a };
    this.held.set(a.uid, h);
    this.hooks.onHeld?.(this.heldBack(), h);
    return true;
  }

  /** A deleted held-back object has nothing left to hold. */
  private dropDeletedHeld(): void {
    let changed = false;
    for (const uid of this.held.keys()) {
      if (!this.store.has(uid)) {
        this.held.delete(uid);
        changed = true;
      }
    }
    if (changed) this.hooks.onHeld?.(this.heldBack(), null);
  }

  private failed(e: unknown, revision: number): boolean {
    if (e instanceof ApiError && e.status === 409) {
      const b = e.body;
      this.conflict = {
        detail: String(b.detail ?? "conflict"),
        current_version: Number(b.current_version),
        updated_by: String(b.updated_by ?? "someone"),
        updated_at: String(b.updated_at ?? ""),
      };
      this.setState("conflict", `${this.conflict.updated_by} saved at ${shortTime(this.conflict.updated_at)}`);
      this.hooks.onConflict(this.conflict);
      return false;
    }
    if (e instanceof ApiError && e.status >= 400 && e.status < 500) {
      // Invalid data or permission: keep local state, show why, wait for the next edit.
      this.rejectedRevision = revision;
      this.setState("error", errorText(e));
      return false;
    }
    this.attempt++;
    const backoff = Math.min(30000, 1000 * 2 ** (this.attempt - 1));
    const offline = e instanceof NetworkError || (typeof navigator !== "undefined" && !navigator.onLine);
    this.setState(offline ? "offline" : "error", `${errorText(e)}; retrying in ${Math.round(backoff / 1000)} s`);
    this.schedule(backoff);
    return false;
  }

  private setState(s: SaveState, reason: string): void {
    this.state = s;
    this.reason = reason;
    this.hooks.onState(s, reason);
  }
}
