/**
 * Module boundaries: the UI, its panels and the tools see the editor through narrow interfaces
 * (UiHost, AttributeHost, HistoryHost, ToolContext), never the Editor class itself. The compiler
 * checks that the interfaces are enough; this checks nobody reaches around them.
 */
/// <reference types="vite/client" />
import { describe, expect, it } from "vitest";

/** The source of every module, by path under src/ ("ui.ts", "tools/edit.ts"). */
const SOURCES: Record<string, string> = Object.fromEntries(
  Object.entries(import.meta.glob<string>("../src/**/*.ts", { query: "?raw", import: "default", eager: true })).map(([path, text]) => [path.replace("../src/", ""), text]),
);

/** The names a module imports from the editor module ("./editor" or "../editor"). */
function importedFromEditor(file: string): string[] {
  const text = SOURCES[file];
  if (text === undefined) throw new Error(`no module ${file}`);
  const names: string[] = [];
  for (const m of text.matchAll(/import\s+(?:type\s+)?\{([^}]*)\}\s+from\s+"\.\.?\/editor"/g)) {
    names.push(...m[1].split(",").map((n) => n.replace(/^\s*type\s+/, "").trim()).filter(Boolean));
  }
  if (/import\s+\*\s+as\s+\w+\s+from\s+"\.\.?\/editor"/.test(text)) names.push("*");
  return names;
}

const narrow = Object.keys(SOURCES).filter((f) => f === "ui.ts" || f.startsWith("panels/") || f.startsWith("tools/"));

describe("module boundaries", () => {
  it.each(narrow)("%s does not take the Editor", (file) => {
    const names = importedFromEditor(file);
    expect(names).not.toContain("Editor");
    expect(names).not.toContain("*");
  });

  it("finds an import of the Editor where there is one", () => {
    expect(narrow.length).toBeGreaterThan(8);
    // main.ts builds the editor: the check above would see it there.
    expect(importedFromEditor("main.ts")).toContain("Editor");
  });
});
