/**
 * Autosave: PUTs the annotation set ~1 s after the last change, tracks a visible save state,
 * retries failed saves with exponential backoff and never overwrites someone else's save
 * silently (409 -> "conflict", resolved only by an explicit user choice).
 */
import { ApiError, NetworkError, api, errorText } from "./api";
import { toPayload, type AnnotationStore } from "./store";

export type SaveState = "saved" | "saving" | "unsaved" | "offline" | "conflict" | "error";

export interface ConflictInfo {
  detail: string;
  current_version: number;
  updated_by: string;
  updated_at: string;
}

export interface AutosaveHooks {
  onState(state: SaveState, reason: string): void;
  onConflict(info: ConflictInfo): void;
  onSaved(version: number): void;
}

export class Autosaver {
  state: SaveState = "saved";
  reason = "";
  version: number;
  private savedRevision: number;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private inFlight: Promise<boolean> | null = null;
  private attempt = 0;
  private conflict: ConflictInfo | null = null;
  /** 400 means "this geometry is invalid": retrying the same data is pointless until it changes. */
  private rejectedRevision = -1;
  readonly delayMs: number;

  constructor(
    private readonly imageId: number,
    version: number,
    private readonly store: AnnotationStore,
    private readonly hooks: AutosaveHooks,
    opts: { delayMs?: number } = {},
  ) {
    this.version = version;
    this.savedRevision = store.revision;
    this.delayMs = opts.delayMs ?? 1000;
    store.subscribe((e) => {
      if (e.cause === "load") return;
      this.changed();
    });
    window.addEventListener("online", () => {
      if (this.state === "offline") this.schedule(0);
    });
  }

  get dirty(): boolean {
    return this.store.revision !== this.savedRevision;
  }

  /** Called after a store change (also after "load their version", with the new base version). */
  changed(): void {
    if (this.conflict) return; // stay in conflict until the user decides
    this.setState("unsaved", "");
    this.attempt = 0;
    this.schedule(this.delayMs);
  }

  resetBase(version: number): void {
    this.version = version;
    this.savedRevision = this.store.revision;
    this.conflict = null;
    this.attempt = 0;
    this.clearTimer();
    this.setState("saved", "");
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
      if (!this.dirty) return true;
    }
    if (this.conflict) return false;
    if (!this.dirty) {
      this.setState("saved", "");
      return true;
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

  private async put(baseVersion: number): Promise<boolean> {
    const revision = this.store.revision;
    if (revision === this.rejectedRevision) return false;
    this.setState("saving", "");
    try {
      const res = await api.saveAnnotations(this.imageId, baseVersion, this.store.all().map(toPayload));
      this.version = res.version;
      this.savedRevision = revision;
      this.attempt = 0;
      this.hooks.onSaved(res.version);
      if (this.dirty) {
        // Edits made while the request was in flight still need saving.
        this.setState("unsaved", "");
        this.schedule(this.delayMs);
        return false;
      }
      this.setState("saved", "");
      return true;
    } catch (e) {
      if (e instanceof ApiError && e.status === 409) {
        const b = e.body;
        this.conflict = {
          detail: String(b.detail ?? "conflict"),
          current_version: Number(b.current_version),
          updated_by: String(b.updated_by ?? "someone"),
          updated_at: String(b.updated_at ?? ""),
        };
        this.setState("conflict", `${this.conflict.updated_by} saved at ${this.conflict.updated_at}`);
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
      this.setState(e instanceof NetworkError || !navigator.onLine ? "offline" : "error", `${errorText(e)}; retrying in ${Math.round(backoff / 1000)} s`);
      this.schedule(backoff);
      return false;
    }
  }

  private setState(s: SaveState, reason: string): void {
    this.state = s;
    this.reason = reason;
    this.hooks.onState(s, reason);
  }
}
