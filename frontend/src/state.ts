/**
 * The editor's view state (no DOM): what is selected, hidden, locked and hovered, the draft of a
 * gesture in progress, the objects' display numbers, the objects-list filter, and whether the
 * image may be edited at all. The Editor owns one and turns its changes into redraws; everything
 * here is plain data with rules, unit-tested on its own (tests/state.test.ts).
 */
import type { AttributeFilter } from "./attributes";
import type { Geometry, Point, VertexRef } from "./geometry";

export interface Draft {
  uid: string;
  geometry?: Geometry;
  offset?: Point;
}

export interface Hover {
  uid: string;
  ref: VertexRef;
  point: Point;
}

/** Why the caller may only look at this image, and what they can do about it. */
export interface ReadOnly {
  reason: string;
  hint: string;
}

export class EditorState {
  selected: string | null = null;
  selectedProposal: number | null = null;
  draft: Draft | null = null;
  /** The vertex of the selected polygon under the cursor. */
  hover: Hover | null = null;
  /** The object under the cursor (its number is shown there). */
  pointed: string | null = null;
  allVisible = true;
  filter: AttributeFilter | null = null;
  readOnly: ReadOnly | null = null;
  private readonly hidden = new Set<string>();
  private readonly locked = new Set<string>();
  private readonly numbers = new Map<string, number>();
  private lastNumber = 0;

  /** Select an object (null: nothing); false when that was already the selection. */
  select(uid: string | null): boolean {
    if (uid === this.selected && this.selectedProposal === null) return false;
    this.selected = uid;
    this.selectedProposal = null;
    this.hover = null;
    return true;
  }

  selectProposal(id: number | null): void {
    this.selected = null;
    this.selectedProposal = id;
    this.hover = null;
  }

  isHidden(uid: string): boolean {
    return this.hidden.has(uid);
  }

  isLocked(uid: string): boolean {
    return this.locked.has(uid);
  }

  /** Hidden or locked objects cannot be picked on the canvas (nor can anything while all are hidden). */
  pickable(uid: string): boolean {
    return this.allVisible && !this.hidden.has(uid) && !this.locked.has(uid);
  }

  toggleHidden(uid: string): boolean {
    return toggle(this.hidden, uid);
  }

  toggleLocked(uid: string): boolean {
    return toggle(this.locked, uid);
  }

  toggleAll(): boolean {
    this.allVisible = !this.allVisible;
    return this.allVisible;
  }

  /** An object left the store: nothing may point at it any more. Its number is not reused. */
  forget(uid: string): void {
    this.hidden.delete(uid);
    this.locked.delete(uid);
    if (this.selected === uid) this.selected = null;
    if (this.hover?.uid === uid) this.hover = null;
    if (this.pointed === uid) this.pointed = null;
    if (this.draft?.uid === uid) this.draft = null;
  }

  /**
   * Display numbers (#1, #2, ...) that tell same-label objects apart: objects present when the
   * image opens are numbered bottom to top, later ones get the next number. Numbers stay with their
   * object while the page is open (deleting #2 does not renumber #3).
   */
  number(uid: string): number {
    let n = this.numbers.get(uid);
    if (n === undefined) {
      n = ++this.lastNumber;
      this.numbers.set(uid, n);
    }
    return n;
  }

  /** Number a freshly loaded set in draw order (bottom first), from 1. */
  renumber(uidsBottomToTop: string[]): void {
    this.numbers.clear();
    this.lastNumber = 0;
    for (const uid of uidsBottomToTop) this.number(uid);
  }

  /** The uid shown as #n, if any. */
  byNumber(n: number): string | null {
    for (const [uid, k] of this.numbers) if (k === n) return uid;
    return null;
  }
}

function toggle(set: Set<string>, uid: string): boolean {
  if (set.has(uid)) {
    set.delete(uid);
    return false;
  }
  set.add(uid);
  return true;
}
