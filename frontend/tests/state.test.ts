import { describe, expect, it } from "vitest";
import { EditorState } from "../src/state";

describe("EditorState", () => {
  it("selects objects and proposals exclusively", () => {
    const s = new EditorState();
    expect(s.select("a")).toBe(true);
    expect(s.select("a")).toBe(false);
    s.selectProposal(7);
    expect(s.selected).toBeNull();
    expect(s.selectedProposal).toBe(7);
    expect(s.select("a")).toBe(true);
    expect(s.selectedProposal).toBeNull();
  });

  it("drops the hovered vertex when the selection changes", () => {
    const s = new EditorState();
    s.select("a");
    s.hover = { uid: "a", ref: { part: 0, ring: 0, index: 1 }, point: [1, 2] };
    s.select("b");
    expect(s.hover).toBeNull();
  });

  it("hidden and locked objects, and everything while all are hidden, cannot be picked", () => {
    const s = new EditorState();
    expect(s.pickable("a")).toBe(true);
    expect(s.toggleHidden("a")).toBe(true);
    expect(s.pickable("a")).toBe(false);
    expect(s.toggleHidden("a")).toBe(false);
    s.toggleLocked("b");
    expect(s.isLocked("b")).toBe(true);
    expect(s.pickable("b")).toBe(false);
    s.toggleAll();
    expect(s.pickable("a")).toBe(false);
  });

  it("forgets everything about an object that left the store", () => {
    const s = new EditorState();
    s.select("a");
    s.toggleHidden("a");
    s.toggleLocked("a");
    s.pointed = "a";
    s.draft = { uid: "a", offset: [1, 1] };
    s.forget("a");
    expect([s.selected, s.pointed, s.draft, s.isHidden("a"), s.isLocked("a")]).toEqual([null, null, null, false, false]);
  });

  it("numbers objects bottom to top on load and new ones after, never reusing a number", () => {
    const s = new EditorState();
    s.renumber(["low", "mid", "top"]);
    expect(["low", "mid", "top"].map((u) => s.number(u))).toEqual([1, 2, 3]);
    s.forget("mid");
    expect(s.number("new")).toBe(4);
    expect(s.number("top")).toBe(3);
    expect(s.byNumber(4)).toBe("new");
    s.renumber(["x"]);
    expect(s.number("x")).toBe(1);
  });
});
