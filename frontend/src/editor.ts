/**
 * The editor controller: owns the store, view state, scene, viewport, renderer, tools and autosave
 * for one image, routes input to the active tool and the keymap, and exposes actions (undo,
 * delete, accept proposal, submit, go to the next image, ...) that the UI and the keymap call.
 * Tools see it only through ToolContext; documented DOM events are dispatched on the root element
 * (see README.md) so other scripts (review mode) can hook in. `destroy()` removes every listener.
 */
import { api, errorText, type BoxEngines, type ImageInfo, type Label, type Prediction, type ProjectInfo, type Repair } from "./api";
import { defaultsOf, missingRequired, parseSchema, type AttrSpec, type AttributeFilter } from "./attributes";
import { Autosaver, type ConflictInfo, type HeldBack, type SaveState } from "./autosave";
import { bboxIntersects, clampToImage, nearestVertex, normalizeGeometry, stackAt, nextInStack, type Geometry, type Point } from "./geometry";
import { showFeedback } from "./groundtruth";
import { JournalRecorder, sameSet, type Journal, type JournalEntry } from "./journal";
import { KEYMAP, findBinding, strokeOf, toolBindings, type Binding, type KeyActions } from "./keymap";
import { MaskSession } from "./mask";
import { Renderer, type Decoration, type RenderModel } from "./render";
import { Scene } from "./scene";
import { EditorState, type Draft, type Hover, type ReadOnly } from "./state";
import {
  AddAnnotation,
  AnnotationStore,
  Batch,
  DismissProposal,
  RemoveAnnotation,
  UpdateAnnotation,
  newUid,
  normalizeCommand,
  replaceSet,
  setGeometry,
  zOrderStep,
  type Annotation,
  type ChangeEvent,
  type Command,
  toPayload,
} from "./store";
import { ToolRegistry, type Tool, type ToolContext, type ToolPointer } from "./tools/types";
import { EditorUI, type UiHost } from "./ui";
import { Viewport } from "./viewport";

export interface EditorOptions {
  imageId: number;
  projectId: number;
  mode: "annotate" | "review";
  username: string;
  nextUrl: string;
  /** The server has a SAM model: box (and click) prompts go to it rather than to GrabCut. */
  sam?: boolean;
  /** The local journal of unsaved edits (null: this browser has no IndexedDB). */
  journal?: Journal | null;
  /** Set when the caller may only look at the image (the server's reason and what to do). */
  readOnly?: ReadOnly | null;
  /** The image list as last filtered: the neighbours of this image there, and where it stands. */
  list?: ImageList;
}

export interface ImageList {
  previous: number | null;
  next: number | null;
  /** 1-based; null when this image is not in the filtered list. */
  position: number | null;
  count: number;
  /** The filters in words ("status: new"), "" for the whole list. */
  filters: string;
  url: string;
}

export interface ToolbarAction {
  id: string;
  label: string;
  title?: string;
  onClick: (editor: Editor) => void;
}

/** An object that cannot be submitted yet: required attributes without a value. */
export interface MissingAttributes {
  uid: string;
  names: string[];
}

export class Editor implements RenderModel, ToolContext, KeyActions, UiHost {
  readonly api = api;
  readonly store = new AnnotationStore();
  readonly state = new EditorState();
  readonly scene = new Scene();
  readonly viewport: Viewport;
  readonly renderer: Renderer;
  readonly ui: EditorUI;
  readonly autosave: Autosaver;
  readonly journal: JournalRecorder;
  readonly sam: boolean;
  /** The box tool's engines on this project, once the server said; `chosenBoxEngine` null: its best. */
  boxEngines: BoxEngines | null = null;
  chosenBoxEngine: string | null = null;
  labels: Label[];
  proposals: Prediction[];
  confidence = 0.5;
  activeLabel: number | null;
  brushSize = 20;
  tool!: Tool;
  /** The keymap rows in dispatch order: tool letters, then the editor's own keys. */
  readonly keymap: Binding[];
  private tools = new Map<string, Tool>();
  private order: Annotation[] | null = null;
  private maskSession: MaskSession | null = null;
  private panning: { last: Point } | null = null;
  private spaceDown = false;
  private lastClick: { screen: Point; time: number } | null = null;
  private labelColors = new Map<number, string>();
  private schemas = new Map<number, AttrSpec[]>();
  /** Aborting it removes every listener the editor put on the window and the stage. */
  private readonly listeners = new AbortController();
  private readonly unsubscribe: () => void;
  private pointedFrame = 0;

  constructor(
    readonly root: HTMLElement,
    readonly opts: EditorOptions,
    readonly image: ImageInfo,
    readonly project: ProjectInfo,
    annotations: Annotation[],
    version: number,
    predictions: Prediction[],
    readonly registry: ToolRegistry,
  ) {
    this.labels = [...project.labels].sort((a, b) => a.order - b.order);
    for (const l of this.labels) {
      this.labelColors.set(l.id, l.color);
      this.schemas.set(l.id, parseSchema(l.attributes_schema));
    }
    this.activeLabel = this.labels[0]?.id ?? null;
    this.proposals = predictions;
    this.sam = opts.sam === true;
    this.state.readOnly = opts.readOnly ?? null;
    this.viewport = new Viewport(image.width, image.height);
    this.ui = new EditorUI(this);
    this.renderer = new Renderer(this.ui.stage, this.ui.imageEl, this);
    this.unsubscribe = this.store.subscribe((e) => this.onStoreChange(e));
    this.store.load(annotations, loadDismissed(image.id));
    for (const p of predictions) this.scene.update(`p:${p.id}`, p.geometry);
    this.journal = new JournalRecorder(opts.journal ?? null, image.id, opts.username, () => ({
      revision: this.store.revision,
      baseVersion: this.autosave.version,
      annotations: this.store.all().map(toPayload),
    }));
    this.autosave = new Autosaver(
      image.id,
      version,
      this.store,
      {
        onState: (s, reason) => this.onSaveState(s, reason),
        onConflict: (info) => this.onConflict(info),
        onSaved: (v) => this.emit("editor:saved", { version: v }),
        onRepaired: (repairs) => this.onRepaired(repairs),
        onHeld: (held, latest) => this.onHeld(held, latest),
      },
      { journal: this.journal },
    );
    for (const name of registry.names()) this.tools.set(name, registry.create(name, this));
    this.keymap = [...toolBindings([...this.tools.values()]), ...KEYMAP];
    this.tool = this.tools.get("edit")!;
    this.ui.build();
    void this.loadBoxEngines();
    this.attachInput();
    this.renderer.resize();
    this.viewport.fit();
    this.ui.onZoom(); // build() showed the zoom before the first fit
    this.addDecorator((d) => this.decorateHeld(d));
    this.renderer.invalidate("all");
    this.renderer.flush();
  }

  /** Which engines the box tool has here and how well each did (measured after training); an older server has none to say. */
  private async loadBoxEngines(): Promise<void> {
    try {
      this.boxEngines = await api.boxEngines(this.opts.projectId);
    } catch {
      return;
    }
    this.ui.showBoxEngines(this.boxEngines, this.chosenBoxEngine);
  }

  boxEngine(): string | null {
    return this.chosenBoxEngine ?? this.boxEngines?.best ?? null;
  }

  setBoxEngine(name: string | null): void {
    this.chosenBoxEngine = name;
    this.ui.showBoxEngines(this.boxEngines, name);
  }

  // ------------------------------------------------------------ RenderModel

  drawOrder(): Annotation[] {
    if (!this.order) this.order = this.store.sortedByZ();
    return this.order;
  }
  annotation(uid: string): Annotation | undefined {
    return this.store.get(uid);
  }
  isHidden(uid: string): boolean {
    return this.state.isHidden(uid);
  }
  isLocked(uid: string): boolean {
    return this.state.isLocked(uid);
  }
  showAll(): boolean {
    return this.state.allVisible;
  }
  selectedUid(): string | null {
    return this.state.selected;
  }
  selectedProposal(): number | null {
    return this.state.selectedProposal;
  }
  draft(): Draft | null {
    return this.state.draft;
  }
  labelColor(label: number | null): string {
    return (label != null && this.labelColors.get(label)) || "#ff00ff";
  }
  labelName(label: number | null): string {
    return this.labels.find((l) => l.id === label)?.name ?? "(no label)";
  }
  /** "person #3": the label with the object's display number (same-label objects told apart). */
  objectName(uid: string): string {
    const a = this.store.get(uid);
    return `${this.labelName(a?.label ?? null)} #${this.state.number(uid)}`;
  }
  objectNumber(uid: string): number {
    return this.state.number(uid);
  }
  visibleProposals(): Prediction[] {
    const accepted = this.store.acceptedPredictionIds();
    return this.proposals.filter((p) => !accepted.has(p.id) && !this.store.isDismissed(p.id) && p.score >= this.confidence);
  }
  hoverVertex(): Point | null {
    const h = this.state.hover;
    return h && h.uid === this.state.selected ? h.point : null;
  }
  maskSessionCanvas(uid: string): HTMLCanvasElement | null {
    return this.maskSession && this.maskSession.uid === uid ? this.maskSession.canvas : null;
  }
  pendingMaskCanvas(): HTMLCanvasElement | null {
    return this.maskSession && !this.store.has(this.maskSession.uid) ? this.maskSession.canvas : null;
  }
  renderToolOverlay(ctx: CanvasRenderingContext2D): void {
    this.tool.renderOverlay?.(ctx);
  }
  private decorators: ((d: Decoration) => void)[] = [];
  decorate(d: Decoration): void {
    for (const fn of this.decorators) fn(d);
  }
  /** Draw extra things over the objects (static layer); call renderer.invalidate("static") when they change. */
  addDecorator(fn: (d: Decoration) => void): void {
    this.decorators.push(fn);
    this.renderer.invalidate("static");
  }

  // ------------------------------------------------------------ ToolContext

  readOnly(): boolean {
    return this.state.readOnly !== null;
  }
  hoveredVertex(): Hover | null {
    return this.state.hover;
  }
  clearHover(): void {
    this.state.hover = null;
  }
  message(text: string, kind: "info" | "error" = "info"): void {
    this.ui.message(text, kind);
  }
  invalidate(layer: "static" | "interaction" | "view" | "all"): void {
    this.renderer.invalidate(layer);
  }

  // ------------------------------------------------------------ state changes

  private onStoreChange(e: ChangeEvent): void {
    this.order = null;
    if (e.cause === "load") this.state.renumber(this.store.sortedByZ().map((a) => a.uid));
    for (const uid of e.uids) {
      const a = this.store.get(uid);
      if (a) this.scene.update(uid, a.geometry);
      else {
        this.scene.remove(uid);
        this.state.forget(uid);
      }
    }
    if (this.maskSession) {
      const a = this.store.get(this.maskSession.uid);
      // Undo/redo or another tool replaced the geometry the session painted: rebuild lazily.
      if (!a || a.geometry !== this.maskSession.geometry) this.maskSession = null;
    }
    if (e.proposalsChanged || e.cause === "load") saveDismissed(this.image.id, this.store.dismissedIds());
    if (this.state.selectedProposal != null && !this.visibleProposals().some((p) => p.id === this.state.selectedProposal)) this.state.selectedProposal = null;
    // The selected object lives on the interaction layer: editing only it leaves the static layer alone.
    const sel = this.state.selected;
    const onlySelected = e.uids.size === 1 && sel !== null && e.uids.has(sel) && !e.proposalsChanged && this.store.has(sel);
    this.renderer?.invalidate(onlySelected ? "interaction" : "static");
    this.ui.onStoreChange(e);
    this.emit("editor:change", { uids: [...e.uids], cause: e.cause });
  }

  /**
   * Run an edit. Every geometry it puts into the store passes normalizeGeometry first (clamped
   * to the image, repeated points and empty parts dropped), whichever tool made it.
   * False when nothing was left to do, or when the image is read-only.
   */
  execute(cmd: Command): boolean {
    if (this.state.readOnly) {
      this.ui.message(`Read only: ${this.state.readOnly.reason}`, "error");
      return false;
    }
    const { width, height } = this.image;
    const fixed = normalizeCommand(cmd, (g) => normalizeGeometry(g, width, height));
    if (!fixed) {
      this.ui.message("Nothing of that shape lies inside the image", "error");
      return false;
    }
    this.store.execute(fixed);
    return true;
  }

  /** Make the editor read-only (the review could not be taken, a decision closed the image) or editable again. */
  setReadOnly(readOnly: ReadOnly | null): void {
    this.state.readOnly = readOnly;
    if (readOnly && !this.tool.viewing) this.setTool("edit");
    this.state.draft = null;
    this.ui.onReadOnly();
    this.renderer.invalidate("all");
    this.emit("editor:read-only", { readOnly });
  }

  /** An image point moved onto the image where it fell outside (clicks in the margin, drags past the edge). */
  clampPoint(p: Point): Point {
    return clampToImage(p, this.image.width, this.image.height);
  }

  select(uid: string | null): void {
    if (uid && !this.store.has(uid)) uid = null;
    if (!this.state.select(uid)) return;
    if (this.maskSession && this.maskSession.uid !== uid) this.maskSession = null;
    this.renderer.invalidate("all");
    this.ui.onSelection();
    this.emit("editor:selection", { uid });
  }

  selectProposal(id: number | null): void {
    this.state.selectProposal(id);
    this.renderer.invalidate("all");
    this.ui.onSelection();
    this.emit("editor:selection", { uid: null, proposal: id });
  }

  setDraft(d: Draft | null): void {
    this.state.draft = d;
    this.renderer.invalidate("interaction");
  }

  setTool(name: string): void {
    const t = this.tools.get(name);
    if (!t || t === this.tool) return;
    if (this.state.readOnly && !t.viewing) {
      this.ui.message(`Read only: ${this.state.readOnly.reason}`, "error");
      return;
    }
    this.tool.deactivate?.();
    this.tool = t;
    t.activate?.();
    this.ui.stage.style.cursor = t.cursor ?? "default";
    this.ui.onTool();
    this.renderer.invalidate("interaction");
  }

  toolNames(): string[] {
    return [...this.tools.keys()];
  }

  toolByName(name: string): Tool | undefined {
    return this.tools.get(name);
  }

  /** Picking tolerance: `px` screen pixels in image units. */
  tol(px: number): number {
    return px / this.viewport.scale;
  }

  /** Visible, unlocked objects under an image point, topmost first. */
  stackAt(p: Point): string[] {
    if (!this.state.allVisible) return [];
    const cands = this.scene.grid
      .queryPoint(p, this.tol(2))
      .filter((k) => !k.startsWith("p:") && this.state.pickable(k))
      .map((k) => this.store.get(k)!)
      .filter(Boolean);
    return stackAt(cands, (a) => this.scene.contains(a.uid, p)).map((a) => a.uid);
  }

  proposalAt(p: Point): number | null {
    const vis = this.visibleProposals();
    const keys = new Set(this.scene.grid.queryPoint(p));
    const hits = vis.filter((v) => keys.has(`p:${v.id}`) && this.scene.contains(`p:${v.id}`, p));
    hits.sort((a, b) => b.score - a.score);
    return hits[0]?.id ?? null;
  }

  /** Click-to-select with cycling through stacked objects on repeated clicks at one spot. */
  clickSelect(p: ToolPointer): void {
    const stack = this.stackAt(p.image);
    const same = this.lastClick && Math.hypot(this.lastClick.screen[0] - p.screen[0], this.lastClick.screen[1] - p.screen[1]) < 4;
    this.lastClick = { screen: p.screen, time: performance.now() };
    const sel = this.state.selected;
    if (stack.length) {
      this.select(same ? nextInStack(stack, sel) : sel && stack.includes(sel) ? sel : stack[0]);
      return;
    }
    const prop = this.proposalAt(p.image);
    if (prop != null) this.selectProposal(prop);
    else this.select(null);
  }

  updateHover(p: Point): void {
    const sel = this.state.selected;
    const a = sel ? this.store.get(sel) : undefined;
    let next: Hover | null = null;
    if (a && a.geometry.type === "polygons" && !this.state.isLocked(a.uid) && !this.state.readOnly) {
      const ref = nearestVertex(a.geometry, p, this.tol(7));
      if (ref) {
        const ring = ref.ring === 0 ? a.geometry.polygons[ref.part].exterior : a.geometry.polygons[ref.part].holes[ref.ring - 1];
        next = { uid: a.uid, ref, point: ring[ref.index] };
      }
    }
    const changed = (next?.point ?? null) !== (this.state.hover?.point ?? null);
    this.state.hover = next;
    if (changed) this.renderer.invalidate("interaction");
  }

  /** The object under the cursor gets its name and number shown beside the cursor (one lookup per frame). */
  private updatePointed(p: ToolPointer | null): void {
    if (this.pointedFrame) cancelAnimationFrame(this.pointedFrame);
    this.pointedFrame = requestAnimationFrame(() => {
      this.pointedFrame = 0;
      const uid = p && !this.panning && p.buttons === 0 && this.tool.viewing ? this.stackAt(p.image)[0] ?? null : null;
      this.state.pointed = uid;
      this.ui.onPointed(uid, p?.screen ?? null);
    });
  }

  newAnnotation(geometry: Geometry, extra: Partial<Annotation> = {}): Annotation {
    const label = extra.label ?? this.activeLabel ?? this.labels[0]?.id ?? 0;
    return {
      uid: newUid(),
      label,
      geometry,
      z_order: this.store.maxZ() + 1,
      source: "manual",
      score: null,
      model_version: null,
      prediction: null,
      ...extra,
      attributes: { ...defaultsOf(this.schemaOf(label)), ...(extra.attributes ?? {}) },
    };
  }

  // ------------------------------------------------------------ attributes

  /** The attribute specs of a label (its schema, in order). */
  schemaOf(label: number | null): AttrSpec[] {
    return (label != null && this.schemas.get(label)) || [];
  }

  /** Set (or with `value` null, clear) one attribute of an object: one undoable step. */
  setAttribute(uid: string, name: string, value: unknown): boolean {
    const a = this.store.get(uid);
    if (!a || this.state.isLocked(uid)) return false;
    const attributes = { ...a.attributes };
    if (value === null || value === undefined) delete attributes[name];
    else attributes[name] = value;
    return this.execute(new UpdateAnnotation(`set ${name}`, a, { ...a, attributes }));
  }

  /** Objects whose required attributes are not all set, in list order (topmost first). */
  missingAttributes(): MissingAttributes[] {
    const out: MissingAttributes[] = [];
    for (const a of [...this.drawOrder()].reverse()) {
      const names = missingRequired(this.schemaOf(a.label), a.attributes);
      if (names.length) out.push({ uid: a.uid, names });
    }
    return out;
  }

  /** Show only the objects whose attribute matches in the objects list (null: all). */
  setAttributeFilter(f: AttributeFilter | null): void {
    this.state.filter = f && f.name ? f : null;
    this.ui.onFilter();
  }

  // ------------------------------------------------------------ mask sessions

  /** The painting session for the selected mask object, created on demand. */
  maskSessionFor(uid: string | null): MaskSession {
    if (uid && this.maskSession && this.maskSession.uid === uid) return this.maskSession;
    const a = uid ? this.store.get(uid) : undefined;
    const color = this.labelColor(a?.label ?? this.activeLabel);
    this.maskSession = new MaskSession(uid ?? newUid(), this.image.width, this.image.height, a?.geometry ?? null, color);
    return this.maskSession;
  }

  /** Commit the finished stroke of the current session as one undoable command. */
  commitMaskStroke(): void {
    const s = this.maskSession;
    if (!s) return;
    const rle = s.end();
    const a = this.store.get(s.uid);
    if (!rle) {
      if (a) this.execute(new RemoveAnnotation(a));
      this.maskSession = null;
      return;
    }
    const geometry: Geometry = { type: "mask", rle };
    s.geometry = geometry;
    if (a) this.execute(setGeometry(a, geometry, "paint mask"));
    else {
      this.execute(new AddAnnotation({ ...this.newAnnotation(geometry), uid: s.uid }));
      this.select(s.uid);
    }
  }

  // ------------------------------------------------------------ actions

  undo(): void {
    if (this.state.readOnly) return this.ui.message(`Read only: ${this.state.readOnly.reason}`, "error");
    const c = this.store.undo();
    this.ui.message(c ? `Undo: ${c.name}` : "Nothing to undo");
  }

  redo(): void {
    if (this.state.readOnly) return this.ui.message(`Read only: ${this.state.readOnly.reason}`, "error");
    const c = this.store.redo();
    this.ui.message(c ? `Redo: ${c.name}` : "Nothing to redo");
  }

  deleteSelected(): void {
    if (this.state.selectedProposal != null) return this.dismissProposal(this.state.selectedProposal);
    const sel = this.state.selected;
    const a = sel ? this.store.get(sel) : undefined;
    if (!a || this.state.isLocked(a.uid)) return;
    this.execute(new RemoveAnnotation(a));
  }

  /** Esc: deselect (tools cancel their own drawing first). */
  cancel(): void {
    this.select(null);
    this.selectProposal(null);
  }

  chooseLabelAt(index: number): void {
    const l = this.labels[index];
    if (l) this.chooseLabel(l.id);
  }

  chooseLabel(id: number): void {
    this.activeLabel = id;
    const sel = this.state.selected;
    const a = sel ? this.store.get(sel) : undefined;
    if (a && a.label !== id && !this.state.isLocked(a.uid)) {
      // The new label's defaults fill in what the object does not have yet.
      const attributes = { ...defaultsOf(this.schemaOf(id)), ...a.attributes };
      this.execute(new UpdateAnnotation("change label", a, { ...a, label: id, attributes }));
    } else if (this.state.selectedProposal != null) {
      const p = this.proposals.find((x) => x.id === this.state.selectedProposal);
      if (p && !this.state.readOnly) this.acceptProposal(p.id, id);
    }
    this.ui.onLabels();
  }

  zOrder(direction: 1 | -1): void {
    const sel = this.state.selected;
    if (!sel) return;
    const cmd = zOrderStep(this.store, sel, direction, (a, b) => {
      const ea = this.scene.get(a.uid), eb = this.scene.get(b.uid);
      return !!ea && !!eb && bboxIntersects(ea.bbox, eb.bbox);
    });
    if (cmd) this.execute(cmd);
    else this.ui.message(direction > 0 ? "Already on top of everything it overlaps" : "Already below everything it overlaps");
  }

  toggleHidden(uid: string): void {
    this.state.toggleHidden(uid);
    this.renderer.invalidate("all");
    this.ui.onRowState(uid);
  }

  toggleLocked(uid: string): void {
    this.state.toggleLocked(uid);
    this.ui.onRowState(uid);
  }

  toggleAll(): void {
    this.state.toggleAll();
    this.renderer.invalidate("all");
    this.ui.onToolbarState();
  }

  toggleCheatsheet(): void {
    this.ui.toggleCheatsheet();
  }

  setConfidence(v: number): void {
    this.confidence = v;
    if (this.state.selectedProposal != null && !this.visibleProposals().some((p) => p.id === this.state.selectedProposal)) this.state.selectedProposal = null;
    this.renderer.invalidate("all");
    this.ui.onProposals();
  }

  acceptProposal(id: number, label?: number): string | null {
    const p = this.proposals.find((x) => x.id === id);
    if (!p) return null;
    const a = this.newAnnotation(p.geometry, {
      label: label ?? p.label ?? this.activeLabel ?? this.labels[0]?.id,
      source: "model",
      score: p.score,
      model_version: p.model_version,
      prediction: p.id,
    });
    if (!this.execute(new AddAnnotation(a))) return null;
    this.select(a.uid);
    return a.uid;
  }

  acceptSelectedProposal(): boolean {
    if (this.state.selectedProposal == null) return false;
    this.acceptProposal(this.state.selectedProposal);
    return true;
  }

  nextCandidate(direction: 1 | -1): boolean {
    return this.tool.cycleCandidate?.(direction) ?? false;
  }

  acceptAllVisible(): void {
    const props = this.visibleProposals();
    if (!props.length) return this.ui.message("No visible proposals");
    let z = this.store.maxZ();
    const cmds = props.map((p) =>
      new AddAnnotation(
        this.newAnnotation(p.geometry, {
          label: p.label ?? this.activeLabel ?? this.labels[0]?.id,
          source: "model",
          score: p.score,
          model_version: p.model_version,
          prediction: p.id,
          z_order: ++z,
        }),
      ),
    );
    if (this.execute(new Batch(`accept ${cmds.length} proposals`, cmds))) this.ui.message(`Accepted ${cmds.length} proposals`);
  }

  editProposal(id: number): void {
    if (this.acceptProposal(id)) this.setTool("edit");
  }

  dismissProposal(id: number): void {
    this.execute(new DismissProposal(id));
    if (this.state.selectedProposal === id) this.selectProposal(null);
  }

  /** Polygon <-> mask through the server's geometry module (one set of conversion rules). */
  async convertSelected(to: "mask" | "polygons"): Promise<void> {
    const sel = this.state.selected;
    const a = sel ? this.store.get(sel) : undefined;
    if (!a) return this.ui.message("Select an object first");
    if (a.geometry.type === to) return this.ui.message(`Already a ${to === "mask" ? "mask" : "polygon"}`);
    if (this.state.readOnly) return this.ui.message(`Read only: ${this.state.readOnly.reason}`, "error");
    try {
      this.ui.message("Converting…");
      const g = await api.convert(a.geometry, to, this.image.width, this.image.height);
      const cur = this.store.get(a.uid);
      if (!cur) return;
      this.execute(setGeometry(cur, g, `convert to ${to}`));
      this.ui.message(`Converted to ${to}`);
    } catch (e) {
      this.ui.message(`Conversion failed: ${errorText(e)}`, "error");
    }
  }

  async saveNow(): Promise<boolean> {
    if (this.state.readOnly) return !this.autosave.dirty;
    return this.autosave.saveNow();
  }

  async submit(): Promise<void> {
    if (this.opts.mode === "review") return;
    if (this.state.readOnly) return this.ui.message(`Read only: ${this.state.readOnly.reason}`, "error");
    const missing = this.missingAttributes();
    if (missing.length) {
      this.ui.onMissingAttributes(missing);
      this.select(missing[0].uid);
      const more = missing.length > 1 ? ` (and ${missing.length - 1} more object${missing.length > 2 ? "s" : ""})` : "";
      return this.ui.message(`Cannot submit: ${this.objectName(missing[0].uid)} needs ${missing[0].names.join(", ")}${more}`, "error");
    }
    this.ui.message("Saving before submit…");
    const ok = await this.autosave.saveNow();
    if (!ok) return this.ui.message(`Cannot submit: ${this.unsavedReason()}`, "error");
    try {
      const { feedback } = await api.submit(this.image.id);
      this.emit("editor:submitted", { image: this.image.id });
      if (feedback) return showFeedback(this, feedback, () => void this.openNextInQueue());
      await this.openNextInQueue();
    } catch (e) {
      this.ui.message(`Submit failed: ${errorText(e)}`, "error");
    }
  }

  private async openNextInQueue(): Promise<void> {
    this.ui.message("Submitted. Opening the next image…");
    try {
      const next = await api.nextInQueue(this.opts.projectId);
      if (!next) return this.ui.showQueueEmpty();
      this.navigate(`/images/${next.id}/edit/`);
    } catch (e) {
      this.ui.message(`Could not open the next image: ${errorText(e)}`, "error");
    }
  }

  /**
   * The previous (-1) or next (1) image of the image list as it was last filtered. Unsaved edits
   * are saved first; when that fails the editor stays, so nothing is lost on the way.
   */
  async goToNeighbour(direction: -1 | 1): Promise<void> {
    const list = this.opts.list;
    const target = direction < 0 ? list?.previous : list?.next;
    if (!target) {
      const where = list?.filters ? ` (filtered: ${list.filters})` : "";
      return this.ui.message(direction < 0 ? `This is the first image of the list${where}` : `This is the last image of the list${where}`);
    }
    if (!this.state.readOnly && (this.autosave.dirty || this.autosave.state !== "saved")) {
      this.ui.message("Saving before moving on…");
      if (!(await this.autosave.saveNow())) return this.ui.message(`Not moving on: ${this.unsavedReason()}`, "error");
    }
    this.navigate(`/images/${target}/edit/${this.opts.mode === "review" ? "?mode=review" : ""}`);
  }

  /** Why not everything is on the server, in plain words (after a failed saveNow). */
  unsavedReason(): string {
    const held = this.autosave.heldBack();
    if (held.length) return `${held.length === 1 ? "one object is" : `${held.length} objects are`} not saved (${held[0].reason}); fix or delete ${held.length === 1 ? "it" : "them"} first`;
    const { state, reason } = this.autosave;
    return `not saved (${state}${reason ? `: ${reason}` : ""})`;
  }

  /** Replaced in tests; leaving the page skips the unsaved-changes prompt only when saved. */
  navigate(url: string): void {
    window.location.assign(url);
  }

  async loadTheirs(): Promise<void> {
    try {
      const set = await api.annotations(this.image.id);
      this.store.load(set.annotations, this.store.dismissedIds());
      this.autosave.resetBase(set.version);
      this.ui.closeDialog();
      this.ui.message(`Loaded version ${set.version}`);
    } catch (e) {
      this.ui.message(`Could not load: ${errorText(e)}`, "error");
    }
  }

  /** The store now holds the server's set at `version` (a restored revision): no undo across it. */
  loadServerSet(annotations: Annotation[], version: number): void {
    this.store.load(annotations, this.store.dismissedIds());
    this.autosave.resetBase(version);
  }

  async keepMine(): Promise<void> {
    this.ui.closeDialog();
    await this.autosave.overwrite();
  }

  private onSaveState(s: SaveState, reason: string): void {
    this.ui.onSaveState(s, reason);
    this.emit("editor:save-state", { state: s, reason });
  }

  private onConflict(info: ConflictInfo): void {
    this.ui.showConflict(info);
  }

  private onRepaired(repairs: Repair[]): void {
    this.ui.message(repairNotice(repairs), "info", repairs.map((r) => r.message).join(" "));
    this.emit("editor:repaired", { uids: repairs.map((r) => r.uid) });
  }

  /** The server refused an object: keep it, mark it, select it and say what to do. */
  private onHeld(held: HeldBack[], latest: HeldBack | null): void {
    this.renderer.invalidate("static");
    this.ui.onHeld(held, latest);
    if (latest) this.select(latest.uid);
    this.emit("editor:held", { uids: held.map((h) => h.uid) });
  }

  /** "Fix it": the refused object, selected, with the vertex tool. */
  fixHeld(uid: string): void {
    this.select(uid);
    this.setTool("edit");
    this.ui.message("Edit the object and it is saved again");
  }

  /** "Delete it": remove the refused object (undoable like any delete). */
  deleteHeld(uid: string): void {
    const a = this.store.get(uid);
    if (a) this.execute(new RemoveAnnotation(a));
  }

  private decorateHeld(d: Decoration): void {
    const held = this.autosave.heldBack();
    if (!held.length) return;
    const { ctx, scale: s } = d;
    d.toImage();
    ctx.save();
    ctx.strokeStyle = "#ff4040";
    ctx.lineWidth = 2 / s;
    ctx.setLineDash([6 / s, 4 / s]);
    for (const h of held) {
      const e = this.scene.get(h.uid);
      if (!e || this.state.isHidden(h.uid)) continue;
      const pad = 3 / s;
      ctx.strokeRect(e.bbox.minX - pad, e.bbox.minY - pad, e.bbox.maxX - e.bbox.minX + 2 * pad, e.bbox.maxY - e.bbox.minY + 2 * pad);
    }
    ctx.restore();
  }

  // ------------------------------------------------------------ journal

  /**
   * On open: a journal entry holding something the server does not have (the tab was closed, the
   * browser crashed, the network was down) is offered back; one that matches is dropped.
   */
  offerRestore(entry: JournalEntry | null): void {
    if (!entry || entry.image !== this.image.id || entry.user !== this.opts.username || this.state.readOnly) return;
    if (sameSet(entry.annotations, this.store.all())) {
      this.journal.discard();
      return;
    }
    this.ui.showRestore(entry);
  }

  /**
   * Put the journaled set back (one undoable step) and save it on the version it was based on:
   * when someone saved since, that save meets the usual conflict dialog.
   */
  async restoreJournal(entry: JournalEntry): Promise<void> {
    this.ui.closeDialog();
    const cmd = replaceSet(this.store, entry.annotations, "restore unsaved edits");
    if (!cmd) return;
    this.autosave.rebase(entry.baseVersion);
    if (this.execute(cmd)) {
      this.ui.message(`Restored ${entry.annotations.length} object${entry.annotations.length === 1 ? "" : "s"} from your unsaved edits`);
      await this.autosave.saveNow();
    }
  }

  discardJournal(): void {
    this.ui.closeDialog();
    this.journal.discard();
    this.ui.message("Unsaved edits discarded");
  }

  // ------------------------------------------------------------ extension points

  private extraActions: ToolbarAction[] = [];

  /** Adds a button to the toolbar's extension slot (used by review mode). */
  addToolbarAction(a: ToolbarAction): HTMLButtonElement {
    this.extraActions.push(a);
    return this.ui.addExtensionButton({ id: a.id, label: a.label, title: a.title, onClick: () => a.onClick(this) });
  }

  emit(name: string, detail: Record<string, unknown>): void {
    this.root.dispatchEvent(new CustomEvent(name, { detail: { ...detail, editor: this } }));
  }

  /** For listeners that other parts (review mode, panels) add: aborted when the editor is destroyed. */
  get signal(): AbortSignal {
    return this.listeners.signal;
  }

  /** Tear down: every window, document and stage listener goes, autosave stops, the DOM is emptied. */
  destroy(): void {
    this.listeners.abort();
    this.unsubscribe();
    this.autosave.dispose();
    if (this.pointedFrame) cancelAnimationFrame(this.pointedFrame);
    this.tool.deactivate?.();
    this.root.replaceChildren();
    this.emit("editor:destroyed", {});
  }

  // ------------------------------------------------------------ input

  private pointer(e: PointerEvent | MouseEvent): ToolPointer {
    const r = this.ui.stage.getBoundingClientRect();
    const screen: Point = [e.clientX - r.left, e.clientY - r.top];
    return {
      screen,
      image: this.viewport.toImage(screen),
      button: e.button,
      buttons: e.buttons,
      shift: e.shiftKey,
      alt: e.altKey,
      ctrl: e.ctrlKey || e.metaKey,
      detail: e.detail,
    };
  }

  /** Start a pan from any tool: middle button, space+drag, or the pan tool. */
  beginPan(p: ToolPointer): void {
    this.panning = { last: p.screen };
  }

  private attachInput(): void {
    const stage = this.ui.stage;
    const signal = this.listeners.signal;
    stage.addEventListener("pointerdown", (e) => {
      stage.setPointerCapture(e.pointerId);
      this.ui.stage.focus({ preventScroll: true });
      const p = this.pointer(e);
      this.updatePointed(null);
      if (e.button === 1 || this.spaceDown) {
        e.preventDefault();
        this.beginPan(p);
        return;
      }
      this.tool.onPointerDown?.(p);
    }, { signal });
    stage.addEventListener("pointermove", (e) => {
      const p = this.pointer(e);
      this.ui.onCursor(p.image);
      if (this.panning) {
        this.viewport.panBy(p.screen[0] - this.panning.last[0], p.screen[1] - this.panning.last[1]);
        this.panning.last = p.screen;
        this.viewChanged();
        return;
      }
      this.tool.onPointerMove?.(p);
      this.updatePointed(p);
    }, { signal });
    stage.addEventListener("pointerleave", () => this.updatePointed(null), { signal });
    const up = (e: PointerEvent) => {
      if (this.panning) {
        this.panning = null;
        return;
      }
      this.tool.onPointerUp?.(this.pointer(e));
    };
    stage.addEventListener("pointerup", up, { signal });
    stage.addEventListener("pointercancel", up, { signal });
    stage.addEventListener("dblclick", (e) => this.tool.onDoubleClick?.(this.pointer(e)), { signal });
    stage.addEventListener("contextmenu", (e) => e.preventDefault(), { signal });
    stage.addEventListener(
      "wheel",
      (e) => {
        e.preventDefault();
        const p = this.pointer(e);
        // Pixel and line deltas differ by ~40x; normalise so one notch is ~12 %.
        const dy = e.deltaMode === 1 ? e.deltaY * 40 : e.deltaY;
        this.viewport.zoomBy(Math.exp(-dy * 0.0012), p.screen[0], p.screen[1]);
        this.viewChanged();
      },
      { passive: false, signal },
    );
    window.addEventListener("keydown", (e) => this.onKeyDown(e), { signal });
    window.addEventListener("keyup", (e) => {
      if (e.code === "Space") {
        this.spaceDown = false;
        this.ui.stage.style.cursor = this.tool.cursor ?? "default";
      }
    }, { signal });
    window.addEventListener("resize", () => this.renderer.resize(), { signal });
    window.addEventListener("beforeunload", (e) => {
      if (this.autosave.dirty || this.autosave.state === "saving" || this.autosave.heldBack().length) {
        e.preventDefault();
        // Legacy browsers need returnValue set to show the prompt.
        e.returnValue = "";
      }
    }, { signal });
  }

  viewChanged(): void {
    this.renderer.invalidate("view");
    this.ui.onZoom();
  }

  zoom(factor: number): void {
    this.viewport.zoomBy(factor);
    this.viewChanged();
  }

  fit(): void {
    this.viewport.fit();
    this.viewChanged();
  }

  oneToOne(): void {
    this.viewport.oneToOne();
    this.viewChanged();
  }

  /** Keys: the active tool first (Ctrl combinations excepted), then the keymap (keymap.ts). */
  private onKeyDown(e: KeyboardEvent): void {
    const t = e.target as HTMLElement | null;
    if (t && ((t.tagName === "INPUT" && (t as HTMLInputElement).type !== "range" && (t as HTMLInputElement).type !== "checkbox") || t.tagName === "TEXTAREA" || t.tagName === "SELECT" || t.isContentEditable)) return;
    if (this.ui.dialogOpen()) {
      if (e.key === "Escape") this.ui.closeDialog(true);
      return;
    }
    const k = strokeOf(e);
    if (e.code === "Space" && !k.ctrl) {
      this.spaceDown = true;
      this.ui.stage.style.cursor = "grab";
      e.preventDefault();
      return;
    }
    if (!k.ctrl && this.tool.onKey?.(e)) {
      e.preventDefault();
      return;
    }
    const binding = findBinding(this.keymap, k);
    if (!binding?.run) return;
    if (binding.run(this, k) === false) return;
    e.preventDefault();
  }

  resizeBrush(factor: number): void {
    this.setBrushSize(this.brushSize * factor);
  }

  setBrushSize(v: number): void {
    this.brushSize = Math.max(1, Math.min(400, Math.round(v)));
    this.ui.onBrush();
    this.renderer.invalidate("interaction");
  }
}

const REPAIR_PHRASES: Record<string, string> = {
  repeated_points: "repeated points removed",
  snapped: "points moved onto the image edge",
  untangled: "outline crossed itself",
  holes_fixed: "hole trimmed to its outline",
  clipped: "cut off at the image edge",
  dropped_parts: "empty parts removed",
  dropped_holes: "empty holes removed",
  simplified: "outline simplified",
};

/** "2 objects repaired: outline crossed itself, cut off at the image edge". */
export function repairNotice(repairs: Repair[]): string {
  const phrases: string[] = [];
  for (const r of repairs) {
    for (const c of r.changes ?? []) {
      const p = REPAIR_PHRASES[c] ?? c.replace(/_/g, " ");
      if (!phrases.includes(p)) phrases.push(p);
    }
  }
  const n = repairs.length;
  const what = phrases.length ? phrases.join(", ") : repairs[0]?.message.replace(/\.$/, "").toLowerCase() ?? "";
  return `${n} object${n === 1 ? "" : "s"} repaired${what ? `: ${what}` : ""}`;
}

function loadDismissed(imageId: number): number[] {
  try {
    return JSON.parse(localStorage.getItem(`annotator:dismissed:${imageId}`) ?? "[]") as number[];
  } catch {
    return [];
  }
}

function saveDismissed(imageId: number, ids: number[]): void {
  try {
    localStorage.setItem(`annotator:dismissed:${imageId}`, JSON.stringify(ids));
  } catch {
    // Private mode / quota: dismissals then only last for this page view.
  }
}

export type { ImageInfo, ProjectInfo, Prediction };
