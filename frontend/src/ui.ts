/**
 * DOM for the editor: toolbar, read-only banner, stage, side panel (labels, objects with their
 * numbers and the attribute filter, the selected object's attributes, proposals, history,
 * guidelines), status bar and dialogs. Every control a test needs has a stable data-testid
 * (listed in README.md). The UI sees the editor only through UiHost and calls its actions; it
 * never edits annotations itself.
 */
import type { BoxEngines, ImageInfo, Label, Prediction, ProjectInfo } from "./api";
import { ANY_VALUE, NO_VALUE, filterOptions, matchesFilter, missingRequired, type AttributeFilter } from "./attributes";
import type { Autosaver, ConflictInfo, HeldBack, SaveState } from "./autosave";
import type { EditorOptions } from "./editor";
import { shortTime } from "./format";
import type { Point } from "./geometry";
import { icon, type IconName } from "./icons";
import type { JournalEntry } from "./journal";
import { cheatSheet, type Binding } from "./keymap";
import { AttributePanel, type AttributeHost } from "./panels/attributes";
import { HistoryPanel, type HistoryHost } from "./panels/history";
import type { EditorState } from "./state";
import type { Annotation, AnnotationStore, ChangeEvent } from "./store";
import type { Tool } from "./tools/types";
import type { Viewport } from "./viewport";

/**
 * Everything the UI uses of the editor (the Editor implements it): what it shows, and the actions
 * its controls call. Nothing else: not the renderer, the scene, the tools' context or the journal.
 */
export interface UiHost extends AttributeHost, HistoryHost {
  readonly root: HTMLElement;
  readonly opts: Pick<EditorOptions, "mode" | "list" | "projectId" | "username">;
  readonly image: Pick<ImageInfo, "id" | "file_url" | "width" | "height" | "original_name">;
  readonly project: Pick<ProjectInfo, "guidelines_html">;
  readonly store: Pick<AnnotationStore, "get" | "all" | "size">;
  readonly state: Readonly<Pick<EditorState, "filter" | "readOnly">>;
  readonly viewport: Pick<Viewport, "scale" | "toScreen">;
  readonly autosave: Pick<Autosaver, "heldReason" | "version">;
  readonly labels: readonly Label[];
  readonly proposals: readonly Prediction[];
  /** The keymap rows, for the cheat sheet. */
  readonly keymap: readonly Binding[];
  readonly tool: { readonly name: string };
  readonly activeLabel: number | null;
  readonly brushSize: number;
  readonly confidence: number;

  // What the panel and the status bar show.
  toolNames(): string[];
  toolByName(name: string): Tool | undefined;
  drawOrder(): Annotation[];
  visibleProposals(): Prediction[];
  selectedProposal(): number | null;
  isHidden(uid: string): boolean;
  showAll(): boolean;
  labelColor(label: number | null): string;

  // What the controls do.
  setTool(name: string): void;
  /** The box → mask engine (null: the project's best). */
  setBoxEngine(name: string | null): void;
  chooseLabel(id: number): void;
  select(uid: string | null): void;
  selectProposal(id: number | null): void;
  setAttributeFilter(f: AttributeFilter | null): void;
  setBrushSize(v: number): void;
  setConfidence(v: number): void;
  undo(): void;
  redo(): void;
  deleteSelected(): void;
  zOrder(direction: 1 | -1): void;
  convertSelected(to: "mask" | "polygons"): Promise<void>;
  toggleAll(): void;
  toggleHidden(uid: string): void;
  toggleLocked(uid: string): void;
  acceptProposal(id: number): string | null;
  acceptAllVisible(): void;
  editProposal(id: number): void;
  dismissProposal(id: number): void;
  goToNeighbour(direction: -1 | 1): Promise<void>;
  submit(): Promise<void>;
  zoom(factor: number): void;
  fit(): void;
  oneToOne(): void;
  fixHeld(uid: string): void;
  deleteHeld(uid: string): void;
  loadTheirs(): Promise<void>;
  keepMine(): Promise<void>;
  restoreJournal(entry: JournalEntry): Promise<void>;
  discardJournal(): void;
}

/** A button in the toolbar's extension slot (review mode's). */
export interface ExtensionButton {
  id: string;
  label: string;
  title?: string;
  onClick: () => void;
}

/** Adds extra controls to an instance row (review mode: verdict toggles, diff marker, comment count). */
export type RowDecorator = (a: Annotation, row: HTMLElement) => void;

type Attrs = Record<string, string | number | boolean | undefined | ((e: Event) => void)>;

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: (Node | string | null)[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    if (typeof v === "function") el.addEventListener(k.replace(/^on/, "").toLowerCase(), v as EventListener);
    else if (k === "testid") el.dataset.testid = String(v);
    else if (k === "class") el.className = String(v);
    // Through the CSSOM: the Content-Security-Policy blocks style="" attributes, not element.style.
    else if (k === "style") el.style.cssText = String(v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children) if (c !== null) el.append(c);
  return el;
}

const SAVE_TEXT: Record<SaveState, string> = {
  saved: "All changes saved",
  saving: "Saving…",
  unsaved: "Unsaved changes",
  offline: "Offline — will retry",
  conflict: "Conflict — someone else saved",
  error: "Not saved",
  held: "Saved, except",
};

/** Toolbar icons of the default tools; a tool without one (an extension's) shows its label. */
const TOOL_ICONS: Record<string, IconName> = {
  edit: "cursor",
  pan: "hand",
  polygon: "polygon",
  hole: "hole",
  part: "part",
  brush: "brush",
  eraser: "eraser",
  boxmask: "box",
  scissors: "scissors",
  comment: "comment",
};

export class EditorUI {
  readonly stage: HTMLDivElement;
  readonly imageEl: HTMLImageElement;
  private toolbar!: HTMLElement;
  private boxEngineSelect!: HTMLSelectElement;
  private extensionSlot!: HTMLElement;
  private instanceList!: HTMLElement;
  private proposalList!: HTMLElement;
  private proposalCount!: HTMLElement;
  private palette!: HTMLElement;
  private saveState!: HTMLElement;
  private statusMsg!: HTMLElement;
  private heldEl!: HTMLElement;
  private heldText!: HTMLElement;
  private heldUid: string | null = null;
  private zoomEl!: HTMLElement;
  private cursorEl!: HTMLElement;
  private countEl!: HTMLElement;
  private brushInput!: HTMLInputElement;
  private brushValue!: HTMLElement;
  private banner!: HTMLElement;
  private pointedTag!: HTMLElement;
  private filterName!: HTMLSelectElement;
  private filterValue!: HTMLSelectElement;
  private filterRow!: HTMLElement;
  private attributes!: AttributePanel;
  private history!: HistoryPanel;
  private dialog: HTMLElement | null = null;
  private rows = new Map<string, HTMLElement>();
  private panel!: HTMLElement;
  /** Objects flagged by a refused submit (required attributes unset) until they are set. */
  private missing = new Map<string, string[]>();
  /** Called at the end of every instance row (re)fill; see addRowDecorator. */
  private rowDecorators: RowDecorator[] = [];
  private built = false;
  private listDirty = false;
  private msgTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(private readonly ed: UiHost) {
    this.stage = h("div", { class: "ed-stage", tabindex: 0, testid: "stage" });
    this.imageEl = h("img", { class: "ed-image", alt: "", draggable: "false", testid: "image" });
    this.stage.append(this.imageEl);
  }

  build(): void {
    const ed = this.ed;
    const review = ed.opts.mode === "review";
    this.imageEl.addEventListener("load", () => {
      (window as unknown as { __editorStats?: Record<string, unknown> }).__editorStats!.imageLoadedAt = performance.now();
      ed.emit("editor:image-loaded", {});
    });
    this.imageEl.addEventListener("error", () => this.message("The image could not be loaded", "error"));
    // Decode off the main thread: a 12-megapixel PNG must not block the first interaction.
    this.imageEl.decoding = "async";
    this.imageEl.src = ed.image.file_url;
    this.imageEl.style.width = `${ed.image.width}px`;
    this.imageEl.style.height = `${ed.image.height}px`;

    // Icon buttons: the tooltip (title) says what and which key, the accessible name is the label.
    const btn = (testid: string, label: string, title: string, onClick: () => void, glyph?: IconName, edits = false) =>
      h("button", { type: "button", class: `ed-btn${glyph ? " ed-icon-btn" : ""}`, testid, title, "aria-label": label, "data-edit": edits ? "1" : undefined, onclick: onClick }, glyph ? icon(glyph) : label);
    const slider = (testid: string, label: string, min: number, max: number, step: number, value: number, onInput: (v: number) => void) => {
      const input = h("input", { type: "range", min, max, step, value, testid, "aria-label": label, oninput: (e) => onInput(Number((e.target as HTMLInputElement).value)) });
      return input;
    };

    const toolButtons = ed.toolNames().map((name) => {
      const t = ed.toolByName(name)!;
      const glyph = TOOL_ICONS[name];
      return h(
        "button",
        { type: "button", class: `ed-btn ed-tool${glyph ? " ed-icon-btn" : ""}`, testid: `tool-${name}`, "data-tool": name, "data-edit": t.viewing ? undefined : "1", title: `${t.title}${t.shortcut ? ` (${t.shortcut.toUpperCase()})` : ""}`, "aria-label": t.label ?? t.title, onclick: () => ed.setTool(name) },
        glyph ? icon(glyph) : t.label ?? t.title,
      );
    });

    const filters = { brightness: 100, contrast: 100 };
    const applyFilter = () => (this.imageEl.style.filter = `brightness(${filters.brightness}%) contrast(${filters.contrast}%)`);
    this.brushInput = slider("brush-size", "Brush size", 1, 200, 1, ed.brushSize, (v) => ed.setBrushSize(v));
    this.brushValue = h("span", { class: "ed-small ed-num", testid: "brush-size-value" }, String(ed.brushSize));
    this.extensionSlot = h("div", { class: "ed-group ed-extension", testid: "toolbar-extension-slot" });
    // Hidden until the server has said which engines the box tool has on this project.
    this.boxEngineSelect = h("select", {
      class: "ed-select ed-small", testid: "box-engine", "aria-label": "Box → mask engine", title: "Box → mask engine", hidden: true,
      onchange: (e) => ed.setBoxEngine((e.target as HTMLSelectElement).value || null),
    });
    const list = ed.opts.list;
    const position = list && list.count
      ? `${list.position ?? "–"} / ${list.count}`
      : "";

    this.toolbar = h(
      "header",
      { class: "ed-toolbar", testid: "toolbar" },
      h("div", { class: "ed-group" }, ...toolButtons, this.boxEngineSelect),
      h(
        "div",
        { class: "ed-group" },
        btn("btn-undo", "Undo", "Undo (Ctrl+Z)", () => ed.undo(), "undo", true),
        btn("btn-redo", "Redo", "Redo (Ctrl+Shift+Z / Ctrl+Y)", () => ed.redo(), "redo", true),
        btn("btn-delete", "Delete", "Delete the selected object (Delete)", () => ed.deleteSelected(), "trash", true),
        btn("btn-forward", "Forward", "Bring forward (Ctrl+])", () => ed.zOrder(1), "forward", true),
        btn("btn-backward", "Back", "Send backward (Ctrl+[)", () => ed.zOrder(-1), "backward", true),
        btn("btn-to-mask", "To mask", "Convert the selected object to a mask (M)", () => void ed.convertSelected("mask"), "to-mask", true),
        btn("btn-to-polygons", "To polygons", "Convert the selected object to polygons (Shift+M)", () => void ed.convertSelected("polygons"), "to-poly", true),
        btn("btn-toggle-all", "Hide all", "Hide / show all objects (T)", () => ed.toggleAll(), "eye"),
      ),
      h("div", { class: "ed-group ed-sliders" }, h("label", { title: "Brush / eraser size in image pixels ([ and ])" }, icon("brush", 12), this.brushInput, this.brushValue)),
      this.extensionSlot,
      h(
        "div",
        { class: "ed-group ed-right" },
        review ? h("span", { class: "ed-badge", testid: "review-badge", title: "Review mode" }, "Review") : null,
        h(
          "span",
          { class: "ed-nav", testid: "image-nav", title: list?.filters ? `The image list, filtered: ${list.filters}` : "The image list" },
          btn("btn-prev-image", "Previous image", "Previous image in the list (PageUp)", () => void ed.goToNeighbour(-1), "chevron-left"),
          h("a", { class: "ed-small ed-position", href: list?.url ?? "#", testid: "list-position", title: list?.filters ? `Back to the image list (${list.filters})` : "Back to the image list" }, position),
          btn("btn-next-image", "Next image", "Next image in the list (PageDown)", () => void ed.goToNeighbour(1), "chevron-right"),
        ),
        btn("btn-help", "Keyboard shortcuts", "Keyboard shortcuts (?)", () => this.toggleCheatsheet(), "help"),
        btn("btn-save", "Save", "Save now (Ctrl+S)", () => void ed.saveNow(), "save", true),
        review ? null : h("button", { type: "button", class: "ed-btn ed-primary", testid: "btn-submit", "data-edit": "1", title: "Submit and open the next image in your queue (Ctrl+Enter)", onclick: () => void ed.submit() }, "Submit", icon("play", 10)),
      ),
    );
    const prev = this.toolbar.querySelector<HTMLButtonElement>('[data-testid="btn-prev-image"]')!;
    const next = this.toolbar.querySelector<HTMLButtonElement>('[data-testid="btn-next-image"]')!;
    prev.disabled = !list?.previous;
    next.disabled = !list?.next;

    this.palette = h("div", { class: "ed-palette", testid: "label-palette" });
    this.instanceList = h("div", { class: "ed-list", testid: "instance-list", role: "listbox" });
    this.proposalList = h("div", { class: "ed-list", testid: "proposal-list" });
    this.proposalCount = h("span", { class: "ed-small", testid: "proposal-count" });
    const conf = slider("confidence", "Minimum confidence", 0, 1, 0.01, ed.confidence, (v) => {
      confValue.textContent = v.toFixed(2);
      ed.setConfidence(v);
    });
    const confValue = h("span", { class: "ed-small", testid: "confidence-value" }, ed.confidence.toFixed(2));
    const guidelines = h("div", { class: "ed-guidelines", testid: "guidelines" });
    // guidelines_html is sanitized by the server (documented in the API), so it is inserted as HTML.
    guidelines.innerHTML = ed.project.guidelines_html || "<p>No guidelines for this project.</p>";
    this.countEl = h("span", { class: "ed-small", testid: "instance-count" });
    this.buildFilter();
    this.attributes = new AttributePanel(ed);
    this.history = new HistoryPanel(ed);

    const panel = (this.panel = h(
      "aside",
      { class: "ed-panel", testid: "side-panel" },
      h("section", {}, h("h3", {}, "Labels"), this.palette),
      h("section", { class: "ed-grow" }, h("h3", {}, "Objects ", this.countEl), this.filterRow, this.instanceList),
      this.attributes.el,
      h(
        "section",
        {},
        h("h3", {}, "Model proposals ", this.proposalCount),
        h("label", { class: "ed-small" }, "Min. score ", conf, confValue),
        h("button", { type: "button", class: "ed-btn", testid: "btn-accept-all", "data-edit": "1", title: "Accept all visible proposals (Shift+A)", onclick: () => ed.acceptAllVisible() }, "Accept all visible"),
        this.proposalList,
      ),
      this.history.el,
      h("details", { testid: "guidelines-panel" }, h("summary", {}, "Guidelines"), guidelines),
    ));

    this.saveState = h("span", { class: "ed-save", testid: "save-state", "data-state": "saved", role: "status" }, SAVE_TEXT.saved);
    this.statusMsg = h("span", { class: "ed-msg", testid: "status-message", role: "status", "aria-live": "polite" });
    this.heldText = h("span", { class: "ed-held-text", testid: "held-reason" });
    this.heldEl = h(
      "span",
      { class: "ed-held-notice", testid: "held-notice", role: "alert", hidden: true },
      icon("warning"),
      this.heldText,
      h("button", { type: "button", class: "ed-btn", testid: "held-fix", title: "Select it with the vertex tool", onclick: () => this.heldUid && ed.fixHeld(this.heldUid) }, "Fix it"),
      h("button", { type: "button", class: "ed-btn ed-danger", testid: "held-delete", title: "Delete this object", onclick: () => this.heldUid && ed.deleteHeld(this.heldUid) }, "Delete it"),
    );
    this.zoomEl = h("span", { class: "ed-small", testid: "zoom-level" });
    this.cursorEl = h("span", { class: "ed-small ed-num", testid: "cursor-pos" });
    const status = h(
      "footer",
      { class: "ed-status", testid: "status-bar" },
      this.saveState,
      this.heldEl,
      this.statusMsg,
      h("span", { class: "ed-spacer" }),
      // View controls live in the status bar so that the toolbar keeps to one row.
      h(
        "span",
        { class: "ed-group ed-sliders ed-view" },
        h("label", { title: "Brightness" }, icon("sun"), slider("brightness", "Brightness", 20, 300, 5, 100, (v) => ((filters.brightness = v), applyFilter()))),
        h("label", { title: "Contrast" }, icon("contrast"), slider("contrast", "Contrast", 20, 300, 5, 100, (v) => ((filters.contrast = v), applyFilter()))),
      ),
      h("span", { class: "ed-small ed-image-info", title: `${ed.image.original_name} · ${ed.image.width}×${ed.image.height} · ${ed.opts.username}` }, `${ed.image.original_name} · ${ed.image.width}×${ed.image.height} · ${ed.opts.username}`),
      this.cursorEl,
      h(
        "span",
        { class: "ed-group ed-view" },
        btn("btn-zoom-out", "−", "Zoom out (-)", () => ed.zoom(0.8)),
        this.zoomEl,
        btn("btn-zoom-in", "+", "Zoom in (+)", () => ed.zoom(1.25)),
        btn("btn-fit", "Fit", "Fit to screen (F)", () => ed.fit()),
        btn("btn-one-to-one", "1:1", "Actual pixels (0)", () => ed.oneToOne()),
      ),
    );

    this.banner = h("div", { class: "ed-banner", testid: "readonly-banner", role: "status", hidden: true });
    this.pointedTag = h("div", { class: "ed-pointed", testid: "hover-tag", hidden: true, "aria-hidden": "true" });
    this.stage.append(this.pointedTag, this.history.previewBar);
    const main = h("div", { class: "ed-main" }, this.stage, panel);
    ed.root.replaceChildren(h("div", { class: "ed-root", "data-mode": ed.opts.mode }, h("div", { class: "ed-top" }, this.toolbar, this.banner), main, status));
    this.built = true;
    this.renderPalette();
    this.rebuildInstances();
    this.onProposals();
    this.onTool();
    this.onZoom();
    this.onToolbarState();
    this.onReadOnly();
  }

  /** "Filter objects by attribute": shown when some label declares attributes. */
  private buildFilter(): void {
    const options = filterOptions(this.ed.labels.map((l) => l.attributes_schema));
    this.filterValue = h("select", { testid: "attribute-filter-value", "aria-label": "Attribute value", onchange: () => this.applyFilter() });
    this.filterName = h(
      "select",
      { testid: "attribute-filter", "aria-label": "Filter objects by attribute", onchange: () => {
        const opt = options.find((o) => o.name === this.filterName.value);
        this.filterValue.replaceChildren(
          h("option", { value: ANY_VALUE }, "is set"),
          h("option", { value: NO_VALUE }, "is not set"),
          ...(opt?.values ?? []).map((v) => h("option", { value: v }, `= ${v}`)),
        );
        this.filterValue.hidden = !opt;
        this.applyFilter();
      } },
      h("option", { value: "" }, "All objects"),
      ...options.map((o) => h("option", { value: o.name }, o.name)),
    );
    this.filterValue.hidden = true;
    this.filterRow = h("div", { class: "ed-filter", testid: "object-filter", hidden: !options.length }, icon("filter", 12), this.filterName, this.filterValue);
  }

  private applyFilter(): void {
    const name = this.filterName.value;
    this.ed.setAttributeFilter(name ? { name, value: this.filterValue.value || ANY_VALUE } : null);
  }

  // ------------------------------------------------------------ updates from the editor

  onStoreChange(e: ChangeEvent): void {
    if (!this.built) return;
    if (e.cause === "load") {
      this.missing.clear();
      this.rebuildInstances();
    } else {
      for (const uid of e.uids) {
        const a = this.ed.store.get(uid);
        const row = this.rows.get(uid);
        if (this.missing.has(uid)) {
          const names = a ? missingRequired(this.ed.schemaOf(a.label), a.attributes) : [];
          if (names.length) this.missing.set(uid, names);
          else this.missing.delete(uid);
        }
        if (!a) {
          row?.remove();
          this.rows.delete(uid);
        } else if (row) this.fillRow(row, a);
        else if (this.instanceList.dataset.complete === "true") this.instanceList.prepend(this.makeRow(a)); // new objects are on top; exact order follows in sortRows
      }
      this.scheduleOrder();
    }
    const sel = this.ed.selectedUid();
    if (sel && e.uids.has(sel)) this.attributes.refresh();
    this.onProposals();
    this.updateCount();
  }

  private updateCount(): void {
    const total = this.ed.store.size;
    const f = this.ed.state.filter;
    if (!f) {
      this.countEl.textContent = `(${total})`;
      return;
    }
    let shown = 0;
    for (const a of this.ed.store.all()) if (matchesFilter(a.attributes, f)) shown++;
    this.countEl.textContent = `(${shown} of ${total})`;
  }

  private scheduleOrder(): void {
    if (this.listDirty) return;
    this.listDirty = true;
    // Re-sorting 2,000 rows is batched to one per frame however many commands ran.
    requestAnimationFrame(() => {
      this.listDirty = false;
      this.sortRows();
    });
  }

  private sortRows(): void {
    if (this.instanceList.dataset.complete !== "true") return;
    const order = [...this.ed.drawOrder()].reverse();
    const children = this.instanceList.children;
    let same = children.length === order.length;
    for (let i = 0; same && i < order.length; i++) if ((children[i] as HTMLElement).dataset.uid !== order[i].uid) same = false;
    if (same) return;
    const frag = document.createDocumentFragment();
    for (const a of order) frag.append(this.rows.get(a.uid) ?? this.makeRow(a));
    this.instanceList.replaceChildren(frag);
  }

  private buildGeneration = 0;

  /**
   * Rows are built in chunks after the first paint: 2,000 rows built synchronously cost a few
   * hundred ms of the open time, and the canvas is what the annotator looks at first.
   */
  private rebuildInstances(): void {
    this.rows.clear();
    this.instanceList.replaceChildren();
    this.updateCount();
    const order = [...this.ed.drawOrder()].reverse();
    const gen = ++this.buildGeneration;
    let i = 0;
    const chunk = () => {
      if (gen !== this.buildGeneration) return;
      const frag = document.createDocumentFragment();
      for (const end = Math.min(order.length, i + 200); i < end; i++) {
        const a = this.ed.store.get(order[i].uid);
        if (a && !this.rows.has(a.uid)) frag.append(this.makeRow(a));
      }
      this.instanceList.append(frag);
      if (i < order.length) setTimeout(chunk, 0);
      else {
        this.instanceList.dataset.complete = "true";
        this.scheduleOrder();
        this.onSelection();
      }
    };
    this.instanceList.dataset.complete = "false";
    if (order.length <= 200) chunk();
    else setTimeout(chunk, 0);
  }

  private makeRow(a: Annotation): HTMLElement {
    const row = h("div", { class: "ed-row", testid: "instance-row", role: "option", "data-uid": a.uid });
    row.addEventListener("click", (e) => {
      if ((e.target as HTMLElement).closest("button")) return;
      this.ed.select(a.uid);
    });
    this.rows.set(a.uid, row);
    this.fillRow(row, a);
    return row;
  }

  private fillRow(row: HTMLElement, a: Annotation): void {
    const ed = this.ed;
    const source = a.source === "model" ? `model ${a.score != null ? a.score.toFixed(2) : ""}` : a.source;
    const hidden = ed.isHidden(a.uid), locked = ed.isLocked(a.uid);
    const number = ed.objectNumber(a.uid);
    row.dataset.label = String(a.label);
    row.dataset.source = a.source;
    row.dataset.kind = a.geometry.type;
    row.dataset.number = String(number);
    const held = ed.autosave.heldReason(a.uid);
    row.dataset.held = String(held !== null);
    row.classList.toggle("ed-held", held !== null);
    const missing = this.missing.get(a.uid);
    row.dataset.missing = String(!!missing);
    row.classList.toggle("ed-selected", ed.selectedUid() === a.uid);
    row.setAttribute("aria-selected", String(ed.selectedUid() === a.uid));
    row.hidden = !matchesFilter(a.attributes, ed.state.filter);
    const children: Node[] = [
      h("span", { class: "ed-swatch", style: `background:${ed.labelColor(a.label)}` }),
      h("span", { class: "ed-number", testid: "instance-number", title: `Object #${number}` }, `#${number}`),
      h("span", { class: "ed-name", testid: "instance-label" }, ed.labelName(a.label)),
      h("span", { class: "ed-small", testid: "instance-source" }, `${a.geometry.type === "mask" ? "mask" : "poly"} · ${source}`),
      h("button", { type: "button", class: "ed-icon", testid: "instance-visibility", title: hidden ? "Show" : "Hide", "aria-label": hidden ? "Show" : "Hide", "aria-pressed": String(hidden), onclick: () => ed.toggleHidden(a.uid) }, icon(hidden ? "eye-off" : "eye")),
      h("button", { type: "button", class: "ed-icon", testid: "instance-lock", title: locked ? "Unlock" : "Lock", "aria-label": locked ? "Unlock" : "Lock", "aria-pressed": String(locked), onclick: () => ed.toggleLocked(a.uid) }, icon(locked ? "lock" : "unlock")),
    ];
    if (held !== null) children.splice(4, 0, h("span", { class: "ed-badge-held", testid: "instance-held", title: `Not saved: ${held}` }, icon("warning", 12), "not saved"));
    else if (missing) children.splice(4, 0, h("span", { class: "ed-badge-held", testid: "instance-missing", title: `Required before submitting: ${missing.join(", ")}` }, icon("asterisk", 12), `needs ${missing.join(", ")}`));
    row.replaceChildren(...children);
    for (const decorate of this.rowDecorators) decorate(a, row);
  }

  onRowState(uid: string): void {
    const a = this.ed.store.get(uid), row = this.rows.get(uid);
    if (a && row) this.fillRow(row, a);
  }

  /** The objects-list filter changed: rows that do not match are hidden. */
  onFilter(): void {
    this.refreshRows();
    this.updateCount();
  }

  /** A refused submit: these objects are marked until their required attributes are set. */
  onMissingAttributes(list: { uid: string; names: string[] }[]): void {
    const before = [...this.missing.keys()];
    this.missing = new Map(list.map((m) => [m.uid, m.names]));
    for (const uid of new Set([...before, ...this.missing.keys()])) this.onRowState(uid);
    this.attributes.refresh(true);
  }

  private selectedRow: string | null = null;

  onSelection(): void {
    if (!this.built) return;
    const uid = this.ed.selectedUid();
    if (this.selectedRow && this.selectedRow !== uid) this.onRowState(this.selectedRow);
    this.selectedRow = uid;
    if (uid) {
      this.onRowState(uid);
      this.rows.get(uid)?.scrollIntoView({ block: "nearest" });
    }
    this.attributes.refresh();
    for (const r of this.proposalList.children) (r as HTMLElement).classList.toggle("ed-selected", Number((r as HTMLElement).dataset.predictionId) === this.ed.selectedProposal());
  }

  /** The object under the cursor: its name and number beside the cursor. */
  onPointed(uid: string | null, screen: Point | null): void {
    if (!this.built) return;
    const tag = this.pointedTag;
    if (!uid || !screen) {
      tag.hidden = true;
      return;
    }
    tag.textContent = this.ed.objectName(uid);
    tag.dataset.uid = uid;
    tag.style.transform = `translate(${Math.round(screen[0] + 14)}px, ${Math.round(screen[1] + 16)}px)`;
    tag.hidden = false;
  }

  /** Read-only: the banner says why and what to do; editing controls are disabled. */
  onReadOnly(): void {
    if (!this.built) return;
    const ro = this.ed.state.readOnly;
    this.banner.hidden = !ro;
    this.banner.replaceChildren(
      ...(ro
        ? [
            icon("lock"),
            h("strong", {}, "Read only"),
            h("span", { testid: "readonly-reason" }, ro.reason),
            h("span", { class: "ed-banner-hint", testid: "readonly-hint" }, ro.hint),
          ]
        : []),
    );
    for (const b of this.ed.root.querySelectorAll<HTMLButtonElement>('.ed-root [data-edit="1"]')) b.disabled = !!ro;
    this.ed.root.querySelector(".ed-root")?.classList.toggle("ed-readonly", !!ro);
    this.attributes.refresh(true);
  }

  onProposals(): void {
    if (!this.built) return;
    const ed = this.ed;
    const vis = ed.visibleProposals();
    this.proposalCount.textContent = `(${vis.length} shown / ${ed.proposals.length})`;
    const frag = document.createDocumentFragment();
    const ro = ed.readOnly();
    for (const p of vis.slice().sort((a, b) => b.score - a.score)) {
      const row = h(
        "div",
        { class: "ed-row", testid: "proposal-row", "data-prediction-id": p.id, onclick: (e: Event) => !(e.target as HTMLElement).closest("button") && ed.selectProposal(p.id) },
        h("span", { class: "ed-swatch ed-dashed", style: `border-color:${ed.labelColor(p.label)}` }),
        h("span", { class: "ed-name" }, p.label != null ? ed.labelName(p.label) : p.class_name),
        h("span", { class: "ed-small" }, p.score.toFixed(2)),
        h("button", { type: "button", class: "ed-icon", testid: "proposal-accept", title: "Accept", "aria-label": "Accept", disabled: ro, onclick: () => ed.acceptProposal(p.id) }, icon("check")),
        h("button", { type: "button", class: "ed-icon", testid: "proposal-edit", title: "Accept and edit", "aria-label": "Accept and edit", disabled: ro, onclick: () => ed.editProposal(p.id) }, icon("pencil")),
        h("button", { type: "button", class: "ed-icon", testid: "proposal-dismiss", title: "Dismiss", "aria-label": "Dismiss", disabled: ro, onclick: () => ed.dismissProposal(p.id) }, icon("cross")),
      );
      row.classList.toggle("ed-selected", p.id === ed.selectedProposal());
      frag.append(row);
    }
    this.proposalList.replaceChildren(frag);
  }

  private renderPalette(): void {
    const ed = this.ed;
    this.palette.replaceChildren(
      ...ed.labels.map((l, i) =>
        h(
          "button",
          { type: "button", class: "ed-label", testid: "label-button", "data-label-id": l.id, "aria-pressed": String(l.id === ed.activeLabel), title: i < 9 ? `Shortcut ${i + 1}` : "", onclick: () => ed.chooseLabel(l.id) },
          h("span", { class: "ed-swatch", style: `background:${l.color}` }),
          i < 9 ? h("kbd", {}, String(i + 1)) : null,
          l.name,
        ),
      ),
    );
  }

  onLabels(): void {
    for (const b of this.palette.children) (b as HTMLElement).setAttribute("aria-pressed", String(Number((b as HTMLElement).dataset.labelId) === this.ed.activeLabel));
  }

  onTool(): void {
    if (!this.built) return;
    for (const b of this.toolbar.querySelectorAll<HTMLElement>(".ed-tool")) b.setAttribute("aria-pressed", String(b.dataset.tool === this.ed.tool.name));
    this.stage.dataset.tool = this.ed.tool.name;
  }

  onToolbarState(): void {
    const b = this.toolbar.querySelector<HTMLElement>('[data-testid="btn-toggle-all"]');
    if (b) {
      const all = this.ed.showAll();
      b.replaceChildren(icon(all ? "eye" : "eye-off"));
      b.setAttribute("aria-label", all ? "Hide all" : "Show all");
      b.title = `${all ? "Hide" : "Show"} all objects (T)`;
      b.setAttribute("aria-pressed", String(!all));
    }
  }

  onZoom(): void {
    if (this.zoomEl) this.zoomEl.textContent = `${Math.round(this.ed.viewport.scale * 100)}%`;
  }

  onBrush(): void {
    this.brushInput.value = String(this.ed.brushSize);
    this.brushValue.textContent = String(this.ed.brushSize);
  }

  onCursor(p: Point): void {
    this.cursorEl.textContent = `${Math.floor(p[0])}, ${Math.floor(p[1])}`;
  }

  onSaveState(s: SaveState, reason: string): void {
    if (!this.built) return;
    this.saveState.dataset.state = s;
    const text = s === "held" ? `${SAVE_TEXT[s]} ${reason}` : reason ? `${SAVE_TEXT[s]}: ${reason}` : SAVE_TEXT[s];
    this.saveState.textContent = text;
    // The bar cuts long texts short; the whole text is in the tooltip.
    this.saveState.title = text;
  }

  /** Objects the server refused: their rows are marked, the latest one's reason and actions shown. */
  onHeld(held: HeldBack[], latest: HeldBack | null): void {
    if (!this.built) return;
    const shown = latest ?? held.find((h) => h.uid === this.heldUid) ?? held[held.length - 1] ?? null;
    const previous = this.heldUid;
    this.heldUid = shown?.uid ?? null;
    this.heldEl.hidden = !shown;
    if (shown) {
      const a = this.ed.store.get(shown.uid);
      const what = a ? this.ed.labelName(a.label) : "An object";
      const more = held.length > 1 ? ` (and ${held.length - 1} more)` : "";
      const text = `${what[0].toUpperCase()}${what.slice(1)} not saved${more}: ${shown.reason}`;
      this.heldText.textContent = text;
      this.heldEl.title = text;
    }
    for (const uid of new Set([...held.map((x) => x.uid), ...(previous ? [previous] : []), ...this.heldRows])) this.onRowState(uid);
    this.heldRows = held.map((x) => x.uid);
  }

  private heldRows: string[] = [];

  message(text: string, kind: "info" | "error" = "info", title = text): void {
    if (!this.built) return;
    this.statusMsg.textContent = text;
    this.statusMsg.title = title;
    this.statusMsg.dataset.kind = kind;
    if (this.msgTimer) clearTimeout(this.msgTimer);
    // Errors stay until replaced; info fades after a few seconds.
    if (kind === "info") this.msgTimer = setTimeout(() => (this.statusMsg.textContent = ""), 5000);
  }

  /** A section at the top of the side panel (review mode: decisions, comments, diff). */
  addPanelSection(section: HTMLElement): void {
    this.panel.prepend(section);
  }

  addRowDecorator(fn: RowDecorator): void {
    this.rowDecorators.push(fn);
    this.refreshRows();
  }

  /** Re-fill every instance row (after a decorator's data changed). */
  refreshRows(): void {
    for (const [uid, row] of this.rows) {
      const a = this.ed.store.get(uid);
      if (a) this.fillRow(row, a);
    }
  }

  row(uid: string): HTMLElement | undefined {
    return this.rows.get(uid);
  }

  /**
   * The box tool's engine choice: "Auto" (the project's best, measured after training) and each
   * engine with its mean IoU on the project's held-out objects, the plain box's for comparison.
   */
  showBoxEngines(engines: BoxEngines | null, chosen: string | null): void {
    const select = this.boxEngineSelect;
    if (!engines) return;
    const iou = (v: number | null | undefined) => (v == null ? "" : ` · IoU ${v.toFixed(2)}`);
    const name = (e: string) => engines.names[e] ?? e;
    select.replaceChildren(
      h("option", { value: "", selected: chosen === null }, `Auto: ${name(engines.best)}`),
      ...engines.available.map((e) => h("option", { value: e, selected: chosen === e }, `${name(e)}${iou(engines.scores[e])}`)),
    );
    select.title = `Box → mask engine${engines.box != null ? ` (a plain box scores IoU ${engines.box.toFixed(2)} on the same objects)` : ""}`;
    select.hidden = false;
  }

  /** A modal dialog for extensions; `buttons[0]` gets the focus. */
  showDialog(testid: string, title: string, body: (Node | string)[], buttons: HTMLElement[], dismissable = true): void {
    this.openDialog(testid, title, body, buttons, dismissable);
  }

  addExtensionButton(a: ExtensionButton): HTMLButtonElement {
    const b = h("button", { type: "button", class: "ed-btn", testid: `ext-${a.id}`, title: a.title ?? a.label, onclick: a.onClick }, a.label);
    this.extensionSlot.append(b);
    return b;
  }

  // ------------------------------------------------------------ dialogs

  dialogOpen(): boolean {
    return this.dialog !== null;
  }

  private openDialog(testid: string, title: string, body: (Node | string)[], buttons: HTMLElement[], dismissable = true, wide = false): void {
    this.closeDialog();
    const box = h("div", { class: `ed-dialog${wide ? " ed-wide" : ""}`, role: "dialog", "aria-modal": "true", "aria-label": title, testid }, h("h2", {}, title), ...body, h("div", { class: "ed-dialog-buttons" }, ...buttons));
    const overlay = h("div", { class: "ed-overlay", "data-dismissable": String(dismissable) }, box);
    this.ed.root.querySelector(".ed-root")!.append(overlay);
    this.dialog = overlay;
    // Focusing a button at the bottom of a long dialog must not scroll its title out of view.
    buttons[0]?.focus({ preventScroll: true });
    box.scrollTop = 0;
  }

  closeDialog(onlyDismissable = false): void {
    if (!this.dialog) return;
    if (onlyDismissable && this.dialog.dataset.dismissable !== "true") return;
    this.dialog.remove();
    this.dialog = null;
  }

  showConflict(info: ConflictInfo): void {
    const when = shortTime(info.updated_at);
    this.openDialog(
      "conflict-dialog",
      "Someone else saved this image",
      [
        h("p", {}, `${info.updated_by} saved a newer version (v${info.current_version}) at ${when} while you were editing.`),
        h("p", {}, "Nothing has been overwritten. Load their version (your unsaved changes are discarded) or keep yours (their changes are replaced by yours)."),
      ],
      [
        h("button", { type: "button", class: "ed-btn", testid: "conflict-load-theirs", onclick: () => void this.ed.loadTheirs() }, "Load their version"),
        h("button", { type: "button", class: "ed-btn ed-danger", testid: "conflict-keep-mine", onclick: () => void this.ed.keepMine() }, "Keep mine (overwrite)"),
      ],
      false,
    );
  }

  /** The journal holds edits the server does not have: restore them or let them go (an explicit choice). */
  showRestore(entry: JournalEntry): void {
    const when = new Date(entry.savedAt).toLocaleString();
    const n = entry.annotations.length;
    this.openDialog(
      "restore-dialog",
      "Unsaved edits found",
      [
        h("p", { testid: "restore-text" }, `This browser kept edits to this image from ${when} that never reached the server (${n} object${n === 1 ? "" : "s"} in all).`),
        h("p", {}, "Restore them to go on where you left off (Undo takes them back out), or discard them and keep what the server has."),
      ],
      [
        h("button", { type: "button", class: "ed-btn ed-primary", testid: "restore-edits", onclick: () => void this.ed.restoreJournal(entry) }, "Restore my unsaved edits"),
        h("button", { type: "button", class: "ed-btn", testid: "restore-discard", onclick: () => this.ed.discardJournal() }, "Discard"),
      ],
      false,
    );
  }

  showQueueEmpty(): void {
    this.openDialog(
      "queue-empty-dialog",
      "Queue is empty",
      [h("p", {}, "Your work was submitted. There are no more images in your queue.")],
      [
        h("a", { class: "ed-btn", href: `/projects/${this.ed.opts.projectId}/`, testid: "queue-empty-project" }, "Back to the project"),
        h("button", { type: "button", class: "ed-btn", testid: "dialog-close", onclick: () => this.closeDialog() }, "Stay here"),
      ],
    );
  }

  /** The cheat sheet, made from the same keymap rows that dispatch the keys (keymap.ts). */
  toggleCheatsheet(): void {
    if (this.dialog?.querySelector('[data-testid="cheatsheet"]')) return this.closeDialog();
    const tools = this.ed.toolNames().map((n) => this.ed.toolByName(n)!);
    const sections = cheatSheet(this.ed.keymap, tools);
    this.openDialog(
      "cheatsheet",
      "Keyboard shortcuts",
      [
        h(
          "div",
          { class: "ed-keys-columns" },
          ...sections.map((s) =>
            h("section", { class: "ed-keys-section" }, h("h3", {}, s.title), h("table", { class: "ed-keys" }, ...s.rows.map(([k, d]) => h("tr", {}, h("th", {}, k), h("td", {}, d))))),
          ),
        ),
      ],
      [h("button", { type: "button", class: "ed-btn", testid: "dialog-close", onclick: () => this.closeDialog() }, "Close")],
      true,
      true,
    );
  }
}
