/**
 * The editor controller: owns the store, scene, viewport, renderer, tools and autosave for one
 * image, routes input to the active tool, and exposes actions (undo, delete, accept proposal,
 * submit, ...) that the UI and keyboard shortcuts call. Documented DOM events are dispatched on
 * the root element (see README.md) so other scripts (review mode) can hook in.
 */
import { ApiError, api, errorText, type ImageInfo, type Label, type Prediction, type ProjectInfo, type Repair } from "./api";
import { Autosaver, type ConflictInfo, type HeldBack, type SaveState } from "./autosave";
import { bboxIntersects, clampToImage, nearestVertex, normalizeGeometry, stackAt, nextInStack, type Geometry, type Point, type VertexRef } from "./geometry";
import { JournalRecorder, sameSet, type Journal, type JournalEntry } from "./journal";
import { MaskSession } from "./mask";
import { Renderer, type Decoration, type RenderModel } from "./render";
import { Scene } from "./scene";
import {
  AddAnnotation,
  AnnotationStore,
  Batch,
  DismissProposal,
  RemoveAnnotation,
  newUid,
  normalizeCommand,
  replaceSet,
  setGeometry,
  setLabel,
  zOrderStep,
  type Annotation,
  type ChangeEvent,
  type Command,
  toPayload,
} from "./store";
import { ToolRegistry, type Tool, type ToolPointer } from "./tools/types";
import { EditorUI } from "./ui";
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
}

export interface ToolbarAction {
  id: string;
  label: string;
  title?: string;
  onClick: (editor: Editor) => void;
}

export class Editor implements RenderModel {
  readonly api = api;
  readonly store = new AnnotationStore();
  readonly scene = new Scene();
  readonly viewport: Viewport;
  readonly renderer: Renderer;
  readonly ui: EditorUI;
  readonly autosave: Autosaver;
  readonly journal: JournalRecorder;
  labels: Label[];
  proposals: Prediction[];
  confidence = 0.5;
  activeLabel: number | null;
  brushSize = 20;
  tool!: Tool;
  private tools = new Map<string, Tool>();
  private selected: string | null = null;
  private selectedPred: number | null = null;
  private draftState: { uid: string; geometry?: Geometry; offset?: Point } | null = null;
  private hidden = new Set<string>();
  private locked = new Set<string>();
  private allVisible = true;
  private order: Annotation[] | null = null;
  hover: { uid: string; ref: VertexRef; point: Point } | null = null;
  private maskSession: MaskSession | null = null;
  private panning: { last: Point } | null = null;
  private spaceDown = false;
  private lastClick: { screen: Point; time: number } | null = null;
  private labelColors = new Map<number, string>();

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
    for (const l of this.labels) this.labelColors.set(l.id, l.color);
    this.activeLabel = this.labels[0]?.id ?? null;
    this.proposals = predictions;
    this.viewport = new Viewport(image.width, image.height);
    this.ui = new EditorUI(this);
    this.renderer = new Renderer(this.ui.stage, this.ui.imageEl, this);
    this.store.subscribe((e) => this.onStoreChange(e));
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
    this.tool = this.tools.get("edit")!;
    this.ui.build();
    this.attachInput();
    this.renderer.resize();
    this.viewport.fit();
    this.ui.onZoom(); // build() showed the zoom before the first fit
    this.addDecorator((d) => this.decorateHeld(d));
    this.renderer.invalidate("all");
    this.renderer.flush();
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
    return this.hidden.has(uid);
  }
  isLocked(uid: string): boolean {
    return this.locked.has(uid);
  }
  showAll(): boolean {
    return this.allVisible;
  }
  selectedUid(): string | null {
    return this.selected;
  }
  selectedProposal(): number | null {
    return this.selectedPred;
  }
  draft(): { uid: string; geometry?: Geometry; offset?: Point } | null {
    return this.draftState;
  }
  labelColor(label: number | null): string {
    return (label != null && this.labelColors.get(label)) || "#ff00ff";
  }
  labelName(label: number | null): string {
    return this.labels.find((l) => l.id === label)?.name ?? "(no label)";
  }
  visibleProposals(): Prediction[] {
    const accepted = this.store.acceptedPredictionIds();
    return this.proposals.filter((p) => !accepted.has(p.id) && !this.store.isDismissed(p.id) && p.score >= this.confidence);
  }
  hoverVertex(): Point | null {
    return this.hover && this.hover.uid === this.selected ? this.hover.point : null;
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

  // ------------------------------------------------------------ state changes

  private onStoreChange(e: ChangeEvent): void {
    this.order = null;
    for (const uid of e.uids) {
      const a = this.store.get(uid);
      if (a) this.scene.update(uid, a.geometry);
      else {
        this.scene.remove(uid);
        this.hidden.delete(uid);
        this.locked.delete(uid);
      }
    }
    if (this.selected && !this.store.has(this.selected)) this.selected = null;
    if (this.maskSession) {
      const a = this.store.get(this.maskSession.uid);
      // Undo/redo or another tool replaced the geometry the session painted: rebuild lazily.
      if (!a || a.geometry !== this.maskSession.geometry) this.maskSession = null;
    }
    if (e.proposalsChanged || e.cause === "load") saveDismissed(this.image.id, this.store.dismissedIds());
    if (this.selectedPred != null && !this.visibleProposals().some((p) => p.id === this.selectedPred)) this.selectedPred = null;
    // The selected object lives on the interaction layer: editing only it leaves the static layer alone.
    const onlySelected = e.uids.size === 1 && this.selected !== null && e.uids.has(this.selected) && !e.proposalsChanged && this.store.has(this.selected);
    this.renderer?.invalidate(onlySelected ? "interaction" : "static");
    this.ui.onStoreChange(e);
    this.emit("editor:change", { uids: [...e.uids], cause: e.cause });
  }

  /**
   * Run an edit. Every geometry it puts into the store passes normalizeGeometry first (clamped
   * to the image, repeated points and empty parts dropped), whichever tool made it.
   * False when nothing was left to do.
   */
  execute(cmd: Command): boolean {
    const { width, height } = this.image;
    const fixed = normalizeCommand(cmd, (g) => normalizeGeometry(g, width, height));
    if (!fixed) {
      this.ui.message("Nothing of that shape lies inside the image", "error");
      return false;
    }
    this.store.execute(fixed);
    return true;
  }

  /** An image point moved onto the image where it fell outside (clicks in the margin, drags past the edge). */
  clampPoint(p: Point): Point {
    return clampToImage(p, this.image.width, this.image.height);
  }

  select(uid: string | null): void {
    if (uid && !this.store.has(uid)) uid = null;
    if (uid === this.selected && this.selectedPred === null) return;
    this.selected = uid;
    this.selectedPred = null;
    this.hover = null;
    if (this.maskSession && this.maskSession.uid !== uid) this.maskSession = null;
    this.renderer.invalidate("all");
    this.ui.onSelection();
    this.emit("editor:selection", { uid });
  }

  selectProposal(id: number | null): void {
    this.selected = null;
    this.selectedPred = id;
    this.renderer.invalidate("all");
    this.ui.onSelection();
    this.emit("editor:selection", { uid: null, proposal: id });
  }

  setDraft(d: { uid: string; geometry?: Geometry; offset?: Point } | null): void {
    this.draftState = d;
    this.renderer.invalidate("interaction");
  }

  setTool(name: string): void {
    const t = this.tools.get(name);
    if (!t || t === this.tool) return;
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
    if (!this.allVisible) return [];
    const cands = this.scene.grid
      .queryPoint(p, this.tol(2))
      .filter((k) => !k.startsWith("p:") && !this.hidden.has(k) && !this.locked.has(k))
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
    if (stack.length) {
      this.select(same ? nextInStack(stack, this.selected) : this.selected && stack.includes(this.selected) ? this.selected : stack[0]);
      return;
    }
    const prop = this.proposalAt(p.image);
    if (prop != null) this.selectProposal(prop);
    else this.select(null);
  }

  updateHover(p: Point): void {
    const a = this.selected ? this.store.get(this.selected) : undefined;
    let next: typeof this.hover = null;
    if (a && a.geometry.type === "polygons" && !this.locked.has(a.uid)) {
      const ref = nearestVertex(a.geometry, p, this.tol(7));
      if (ref) {
        const ring = ref.ring === 0 ? a.geometry.polygons[ref.part].exterior : a.geometry.polygons[ref.part].holes[ref.ring - 1];
        next = { uid: a.uid, ref, point: ring[ref.index] };
      }
    }
    const changed = (next?.point ?? null) !== (this.hover?.point ?? null);
    this.hover = next;
    if (changed) this.renderer.invalidate("interaction");
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
      attributes: {},
      ...extra,
    };
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
    const c = this.store.undo();
    this.ui.message(c ? `Undo: ${c.name}` : "Nothing to undo");
  }

  redo(): void {
    const c = this.store.redo();
    this.ui.message(c ? `Redo: ${c.name}` : "Nothing to redo");
  }

  deleteSelected(): void {
    if (this.selectedPred != null) return this.dismissProposal(this.selectedPred);
    const a = this.selected ? this.store.get(this.selected) : undefined;
    if (!a || this.locked.has(a.uid)) return;
    this.execute(new RemoveAnnotation(a));
  }

  chooseLabel(id: number): void {
    this.activeLabel = id;
    const a = this.selected ? this.store.get(this.selected) : undefined;
    if (a && a.label !== id && !this.locked.has(a.uid)) this.execute(setLabel(a, id));
    else if (this.selectedPred != null) {
      const p = this.proposals.find((x) => x.id === this.selectedPred);
      if (p) this.acceptProposal(p.id, id);
    }
    this.ui.onLabels();
  }

  zOrder(direction: 1 | -1): void {
    if (!this.selected) return;
    const cmd = zOrderStep(this.store, this.selected, direction, (a, b) => {
      const ea = this.scene.get(a.uid), eb = this.scene.get(b.uid);
      return !!ea && !!eb && bboxIntersects(ea.bbox, eb.bbox);
    });
    if (cmd) this.execute(cmd);
    else this.ui.message(direction > 0 ? "Already on top of everything it overlaps" : "Already below everything it overlaps");
  }

  toggleHidden(uid: string): void {
    if (this.hidden.has(uid)) this.hidden.delete(uid);
    else this.hidden.add(uid);
    this.renderer.invalidate("all");
    this.ui.onRowState(uid);
  }

  toggleLocked(uid: string): void {
    if (this.locked.has(uid)) this.locked.delete(uid);
    else this.locked.add(uid);
    this.ui.onRowState(uid);
  }

  toggleAll(): void {
    this.allVisible = !this.allVisible;
    this.renderer.invalidate("all");
    this.ui.onToolbarState();
  }

  setConfidence(v: number): void {
    this.confidence = v;
    if (this.selectedPred != null && !this.visibleProposals().some((p) => p.id === this.selectedPred)) this.selectedPred = null;
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
    this.execute(new AddAnnotation(a));
    this.select(a.uid);
    return a.uid;
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
    this.execute(new Batch(`accept ${cmds.length} proposals`, cmds));
    this.ui.message(`Accepted ${cmds.length} proposals`);
  }

  editProposal(id: number): void {
    if (this.acceptProposal(id)) this.setTool("edit");
  }

  dismissProposal(id: number): void {
    this.execute(new DismissProposal(id));
    if (this.selectedPred === id) this.selectProposal(null);
  }

  /** Polygon <-> mask through the server's geometry module (one set of conversion rules). */
  async convertSelected(to: "mask" | "polygons"): Promise<void> {
    const a = this.selected ? this.store.get(this.selected) : undefined;
    if (!a) return this.ui.message("Select an object first");
    if (a.geometry.type === to) return this.ui.message(`Already a ${to === "mask" ? "mask" : "polygon"}`);
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
    return this.autosave.saveNow();
  }

  async submit(): Promise<void> {
    if (this.opts.mode === "review") return;
    this.ui.message("Saving before submit…");
    const ok = await this.autosave.saveNow();
    if (!ok) return this.ui.message(`Cannot submit: ${this.unsavedReason()}`, "error");
    try {
      await api.submit(this.image.id);
      this.emit("editor:submitted", { image: this.image.id });
      this.ui.message("Submitted. Opening the next image…");
      const next = await api.nextInQueue(this.opts.projectId);
      if (!next) {
        this.ui.showQueueEmpty();
        return;
      }
      this.navigate(`/images/${next.id}/edit/`);
    } catch (e) {
      this.ui.message(`Submit failed: ${errorText(e)}`, "error");
    }
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
      if (!e || this.hidden.has(h.uid)) continue;
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
    if (!entry || entry.image !== this.image.id || entry.user !== this.opts.username) return;
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
    return this.ui.addExtensionButton(a);
  }

  emit(name: string, detail: Record<string, unknown>): void {
    this.root.dispatchEvent(new CustomEvent(name, { detail: { ...detail, editor: this } }));
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
    stage.addEventListener("pointerdown", (e) => {
      stage.setPointerCapture(e.pointerId);
      this.ui.stage.focus({ preventScroll: true });
      const p = this.pointer(e);
      if (e.button === 1 || this.spaceDown) {
        e.preventDefault();
        this.beginPan(p);
        return;
      }
      this.tool.onPointerDown?.(p);
    });
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
    });
    const up = (e: PointerEvent) => {
      if (this.panning) {
        this.panning = null;
        return;
      }
      this.tool.onPointerUp?.(this.pointer(e));
    };
    stage.addEventListener("pointerup", up);
    stage.addEventListener("pointercancel", up);
    stage.addEventListener("dblclick", (e) => this.tool.onDoubleClick?.(this.pointer(e)));
    stage.addEventListener("contextmenu", (e) => e.preventDefault());
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
      { passive: false },
    );
    window.addEventListener("keydown", (e) => this.onKeyDown(e));
    window.addEventListener("keyup", (e) => {
      if (e.code === "Space") {
        this.spaceDown = false;
        this.ui.stage.style.cursor = this.tool.cursor ?? "default";
      }
    });
    window.addEventListener("resize", () => this.renderer.resize());
    window.addEventListener("beforeunload", (e) => {
      if (this.autosave.dirty || this.autosave.state === "saving" || this.autosave.heldBack().length) {
        e.preventDefault();
        // Legacy browsers need returnValue set to show the prompt.
        e.returnValue = "";
      }
    });
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

  private onKeyDown(e: KeyboardEvent): void {
    const t = e.target as HTMLElement | null;
    if (t && (t.tagName === "INPUT" && (t as HTMLInputElement).type !== "range" || t.tagName === "TEXTAREA" || t.isContentEditable)) return;
    if (this.ui.dialogOpen()) {
      if (e.key === "Escape") this.ui.closeDialog(true);
      return;
    }
    const ctrl = e.ctrlKey || e.metaKey;
    if (e.code === "Space" && !ctrl) {
      this.spaceDown = true;
      this.ui.stage.style.cursor = "grab";
      e.preventDefault();
      return;
    }
    if (ctrl) {
      const k = e.key.toLowerCase();
      if (k === "z" && e.shiftKey) this.redo();
      else if (k === "z") this.undo();
      else if (k === "y") this.redo();
      else if (k === "s") void this.saveNow();
      else if (e.key === "Enter") void this.submit();
      else if (e.key === "]") this.zOrder(1);
      else if (e.key === "[") this.zOrder(-1);
      else return;
      e.preventDefault();
      return;
    }
    if (this.tool.onKey?.(e)) {
      e.preventDefault();
      return;
    }
    const key = e.key;
    if (/^[1-9]$/.test(key)) {
      const l = this.labels[Number(key) - 1];
      if (l) this.chooseLabel(l.id);
    } else if (key === "+" || key === "=") this.zoom(1.25);
    else if (key === "-" || key === "_") this.zoom(0.8);
    else if (key === "0") this.oneToOne();
    else if (key === "f" || key === "F") this.fit();
    else if (key === "[") this.setBrushSize(this.brushSize / 1.25);
    else if (key === "]") this.setBrushSize(this.brushSize * 1.25);
    else if (key === "Delete" || key === "Backspace") this.deleteSelected();
    else if (key === "Escape") {
      this.select(null);
      this.selectProposal(null);
    } else if (key === "?") this.ui.toggleCheatsheet();
    else if (key === "t" || key === "T") this.toggleAll();
    else if (key === "m" || key === "M") void this.convertSelected(e.shiftKey ? "polygons" : "mask");
    else if (key === "a" && this.selectedPred != null) this.acceptProposal(this.selectedPred);
    else if (key === "A") this.acceptAllVisible();
    else {
      const tool = [...this.tools.values()].find((x) => x.shortcut && x.shortcut.toLowerCase() === key.toLowerCase() && !e.shiftKey);
      if (!tool) return;
      this.setTool(tool.name);
    }
    e.preventDefault();
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

export function isUnavailable(e: unknown): boolean {
  return e instanceof ApiError && (e.status === 404 || e.status === 501);
}

export type { ImageInfo, ProjectInfo, Prediction };
