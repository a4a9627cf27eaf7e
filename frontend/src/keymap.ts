/**
 * The one keymap (no DOM): every editor shortcut is a row of KEYMAP, and the same rows drive both
 * the key dispatch (`findBinding`) and the cheat sheet (`cheatSheet`), so the two cannot disagree.
 * Tool shortcuts come from the tool registry (`toolBindings`), and keys a tool handles itself while
 * it is active (Enter closes a polygon, ...) are documented by the tool's `keys`.
 */

/** The parts of a keyboard event a binding looks at. */
export interface KeyStroke {
  key: string;
  ctrl: boolean;
  shift: boolean;
  alt: boolean;
}

export function strokeOf(e: { key: string; ctrlKey: boolean; metaKey: boolean; shiftKey: boolean; altKey: boolean }): KeyStroke {
  return { key: e.key, ctrl: e.ctrlKey || e.metaKey, shift: e.shiftKey, alt: e.altKey };
}

/** What the bindings call; the Editor implements it. */
export interface KeyActions {
  undo(): void;
  redo(): void;
  saveNow(): unknown;
  submit(): unknown;
  zOrder(direction: 1 | -1): void;
  chooseLabelAt(index: number): void;
  zoom(factor: number): void;
  fit(): void;
  oneToOne(): void;
  resizeBrush(factor: number): void;
  deleteSelected(): void;
  cancel(): void;
  toggleCheatsheet(): void;
  toggleAll(): void;
  convertSelected(to: "mask" | "polygons"): unknown;
  /** False when no proposal is selected (the key then does nothing). */
  acceptSelectedProposal(): boolean;
  acceptAllVisible(): void;
  /** Show the next / previous mask the server proposed for the active tool's last prompt (SAM); false when there is none. */
  nextCandidate(direction: 1 | -1): boolean;
  goToNeighbour(direction: -1 | 1): unknown;
  setTool(name: string): void;
}

export type KeyGroup = "Tools" | "Drawing" | "Objects" | "View" | "Image and saving" | "Mouse";

export interface Binding {
  /** The keys as the cheat sheet shows them. */
  keys: string;
  does: string;
  group: KeyGroup;
  /** Absent for rows that only document (mouse gestures, Space+drag). */
  match?(k: KeyStroke): boolean;
  /** Returning false means "not handled" (the key goes on to the browser). */
  run?(a: KeyActions, k: KeyStroke): void | boolean;
}

/**
 * A matcher for one combination as written in the cheat sheet: "Ctrl+Shift+Z", "Shift+A", "m", "?".
 * Letters compare case-insensitively with Shift exact ("a" is not "Shift+A"); for other keys Shift
 * is part of typing the character ("?", "+") and is ignored. Ctrl (or Cmd) and Alt must match.
 */
export function press(combo: string): (k: KeyStroke) => boolean {
  const parts = combo === "+" ? ["+"] : combo.split("+").map((p) => (p === "" ? "+" : p));
  const key = parts[parts.length - 1];
  const mods = new Set(parts.slice(0, -1).map((m) => m.toLowerCase()));
  const letter = /^[a-z]$/i.test(key);
  return (k) => {
    if (k.ctrl !== mods.has("ctrl") || k.alt !== mods.has("alt")) return false;
    if (letter) return k.key.toLowerCase() === key.toLowerCase() && k.shift === mods.has("shift");
    return k.key === key && (!mods.has("shift") || k.shift);
  };
}

const any = (...combos: string[]) => {
  const ms = combos.map(press);
  return (k: KeyStroke) => ms.some((m) => m(k));
};

export const KEYMAP: Binding[] = [
  { keys: "1–9", does: "Choose label (changes the selected object's label)", group: "Objects", match: (k) => !k.ctrl && !k.alt && /^[1-9]$/.test(k.key), run: (a, k) => a.chooseLabelAt(Number(k.key) - 1) },
  { keys: "Delete", does: "Delete the hovered vertex, else the selected object (or dismiss the proposal)", group: "Objects", match: any("Delete", "Backspace"), run: (a) => a.deleteSelected() },
  { keys: "Esc", does: "Cancel drawing / deselect", group: "Objects", match: press("Escape"), run: (a) => a.cancel() },
  { keys: "Ctrl+] / Ctrl+[", does: "Bring forward / send backward", group: "Objects", match: any("Ctrl+]", "Ctrl+["), run: (a, k) => a.zOrder(k.key === "]" ? 1 : -1) },
  { keys: "M / Shift+M", does: "Convert the selected object to a mask / to polygons (server)", group: "Objects", match: any("m", "Shift+M"), run: (a, k) => void a.convertSelected(k.shift ? "polygons" : "mask") },
  { keys: "A", does: "Accept the selected proposal", group: "Objects", match: press("a"), run: (a) => a.acceptSelectedProposal() },
  { keys: "Shift+A", does: "Accept all visible proposals", group: "Objects", match: press("Shift+A"), run: (a) => a.acceptAllVisible() },
  { keys: "T", does: "Hide / show all objects", group: "View", match: any("t", "Shift+T"), run: (a) => a.toggleAll() },
  { keys: "C / Shift+C", does: "Next / previous candidate mask (SAM's other answers to the last box or click)", group: "Drawing", match: any("c", "Shift+C"), run: (a, k) => a.nextCandidate(k.shift ? -1 : 1) },
  { keys: "[ / ]", does: "Brush size smaller / larger", group: "Drawing", match: any("[", "]"), run: (a, k) => a.resizeBrush(k.key === "]" ? 1.25 : 1 / 1.25) },
  { keys: "Wheel, + / −", does: "Zoom in / out", group: "View", match: any("+", "=", "-", "_"), run: (a, k) => a.zoom(k.key === "+" || k.key === "=" ? 1.25 : 0.8) },
  { keys: "F / 0", does: "Fit to screen / actual pixels (1:1)", group: "View", match: any("f", "Shift+F", "0"), run: (a, k) => (k.key === "0" ? a.oneToOne() : a.fit()) },
  { keys: "Space+drag, middle drag", does: "Pan (with any tool)", group: "View" },
  { keys: "Ctrl+Z", does: "Undo", group: "Image and saving", match: press("Ctrl+Z"), run: (a) => a.undo() },
  { keys: "Ctrl+Shift+Z / Ctrl+Y", does: "Redo", group: "Image and saving", match: any("Ctrl+Shift+Z", "Ctrl+Y"), run: (a) => a.redo() },
  { keys: "Ctrl+S", does: "Save now", group: "Image and saving", match: press("Ctrl+S"), run: (a) => void a.saveNow() },
  { keys: "Ctrl+Enter", does: "Submit and open the next image in your queue", group: "Image and saving", match: press("Ctrl+Enter"), run: (a) => void a.submit() },
  { keys: "PageUp / PageDown", does: "Previous / next image in the image list (as filtered there)", group: "Image and saving", match: any("PageUp", "PageDown"), run: (a, k) => void a.goToNeighbour(k.key === "PageUp" ? -1 : 1) },
  { keys: "?", does: "This cheat sheet", group: "Image and saving", match: press("?"), run: (a) => a.toggleCheatsheet() },
];

/** A tool as the keymap sees it (tools/types.ts Tool). */
export interface KeyedTool {
  name: string;
  title: string;
  shortcut?: string;
  /** Keys and gestures the tool handles while it is active: [keys, what they do]. */
  keys?: [string, string][];
}

/** One row per tool with a shortcut: the letter selects the tool. */
export function toolBindings(tools: KeyedTool[]): Binding[] {
  return tools
    .filter((t) => t.shortcut)
    .map((t) => ({ keys: t.shortcut!.toUpperCase(), does: t.title, group: "Tools" as const, match: press(t.shortcut!.toLowerCase()), run: (a: KeyActions) => a.setTool(t.name) }));
}

/** The first binding that matches the stroke. */
export function findBinding(bindings: Binding[], k: KeyStroke): Binding | null {
  for (const b of bindings) if (b.match?.(k)) return b;
  return null;
}

export interface CheatSection {
  title: string;
  rows: [string, string][];
}

const ORDER: KeyGroup[] = ["Tools", "Drawing", "Objects", "View", "Image and saving", "Mouse"];

/** The cheat sheet: the bindings by group, each tool's own keys under "Drawing" / "Mouse". */
export function cheatSheet(bindings: readonly Binding[], tools: readonly KeyedTool[]): CheatSection[] {
  const rows = new Map<KeyGroup, [string, string][]>(ORDER.map((g) => [g, []]));
  for (const b of bindings) rows.get(b.group)!.push([b.keys, b.does]);
  for (const t of tools) {
    for (const [keys, does] of t.keys ?? []) {
      const mouse = /click|drag|wheel/i.test(keys) && !/^(Enter|Backspace|Esc)/.test(keys);
      rows.get(mouse ? "Mouse" : "Drawing")!.push([keys, `${t.title}: ${does}`]);
    }
  }
  return ORDER.filter((g) => rows.get(g)!.length).map((g) => ({ title: g, rows: rows.get(g)! }));
}
