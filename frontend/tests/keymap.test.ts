import { describe, expect, it, vi } from "vitest";
import { KEYMAP, cheatSheet, findBinding, press, toolBindings, type KeyActions, type KeyStroke } from "../src/keymap";

const k = (key: string, mods: Partial<KeyStroke> = {}): KeyStroke => ({ key, ctrl: false, shift: false, alt: false, ...mods });

function actions(): KeyActions & Record<string, ReturnType<typeof vi.fn>> {
  const names = ["undo", "redo", "saveNow", "submit", "zOrder", "chooseLabelAt", "zoom", "fit", "oneToOne", "resizeBrush", "deleteSelected", "cancel",
    "toggleCheatsheet", "toggleAll", "convertSelected", "acceptSelectedProposal", "acceptAllVisible", "nextCandidate", "goToNeighbour", "setTool"];
  return Object.fromEntries(names.map((n) => [n, vi.fn(() => true)])) as never;
}

const TOOLS = [
  { name: "polygon", title: "Draw polygon", shortcut: "p", keys: [["Enter / double-click", "close the outline"], ["Backspace", "remove the last vertex"]] as [string, string][] },
  { name: "edit", title: "Select / edit", shortcut: "v", keys: [["Right-click a vertex", "delete it"]] as [string, string][] },
];
const ALL = [...toolBindings(TOOLS), ...KEYMAP];

function dispatch(stroke: KeyStroke) {
  const a = actions();
  const b = findBinding(ALL, stroke);
  b?.run?.(a, stroke);
  return { b, a };
}

describe("press", () => {
  it("matches letters case-insensitively with Shift exact, and ignores Shift for typed characters", () => {
    expect(press("a")(k("a"))).toBe(true);
    expect(press("a")(k("A", { shift: true }))).toBe(false);
    expect(press("Shift+A")(k("A", { shift: true }))).toBe(true);
    expect(press("?")(k("?", { shift: true }))).toBe(true);
    expect(press("Ctrl+Z")(k("z", { ctrl: true }))).toBe(true);
    expect(press("Ctrl+Z")(k("z"))).toBe(false);
    expect(press("Ctrl+Z")(k("Z", { ctrl: true, shift: true }))).toBe(false);
    expect(press("+")(k("+", { shift: true }))).toBe(true);
  });
});

describe("the keymap drives dispatch", () => {
  it("runs the action of the matching row", () => {
    expect(dispatch(k("z", { ctrl: true })).a.undo).toHaveBeenCalled();
    expect(dispatch(k("Z", { ctrl: true, shift: true })).a.redo).toHaveBeenCalled();
    expect(dispatch(k("3")).a.chooseLabelAt).toHaveBeenCalledWith(2);
    expect(dispatch(k("PageDown")).a.goToNeighbour).toHaveBeenCalledWith(1);
    expect(dispatch(k("PageUp")).a.goToNeighbour).toHaveBeenCalledWith(-1);
    expect(dispatch(k("M", { shift: true })).a.convertSelected).toHaveBeenCalledWith("polygons");
    expect(dispatch(k("]", { ctrl: true })).a.zOrder).toHaveBeenCalledWith(1);
    expect(dispatch(k("]")).a.resizeBrush).toHaveBeenCalledWith(1.25);
    expect(dispatch(k("p")).a.setTool).toHaveBeenCalledWith("polygon");
    expect(dispatch(k("c")).a.nextCandidate).toHaveBeenCalledWith(1);
    expect(dispatch(k("C", { shift: true })).a.nextCandidate).toHaveBeenCalledWith(-1);
  });

  it("tells accept-selected from accept-all and leaves unknown keys alone", () => {
    expect(dispatch(k("a")).a.acceptSelectedProposal).toHaveBeenCalled();
    expect(dispatch(k("A", { shift: true })).a.acceptAllVisible).toHaveBeenCalled();
    expect(dispatch(k("q")).b).toBeNull();
    expect(dispatch(k("p", { ctrl: true })).b).toBeNull();
  });

  it("gives every key one meaning", () => {
    const strokes = [k("a"), k("A", { shift: true }), k("z", { ctrl: true }), k("m"), k("t"), k("f"), k("0"), k("Delete"), k("Escape"), k("?", { shift: true }), k("PageUp"), k("v"), k("p"), k("c")];
    for (const s of strokes) expect(ALL.filter((b) => b.match?.(s)).length, s.key).toBe(1);
  });
});

describe("the keymap drives the cheat sheet", () => {
  it("lists every row once, the tools' own keys with them, mouse gestures apart", () => {
    const sections = cheatSheet(ALL, TOOLS);
    const rows = sections.flatMap((s) => s.rows);
    for (const b of ALL) expect(rows.filter(([keys, does]) => keys === b.keys && does === b.does)).toHaveLength(1);
    expect(sections[0].title).toBe("Tools");
    expect(sections.find((s) => s.title === "Drawing")!.rows).toContainEqual(["Enter / double-click", "Draw polygon: close the outline"]);
    expect(sections.find((s) => s.title === "Mouse")!.rows).toContainEqual(["Right-click a vertex", "Select / edit: delete it"]);
  });
});
