/**
 * Review mode (data-mode="review") and review feedback in annotate mode, built only on the
 * editor's extension points (panel section, row decorators, decorations, a registered tool):
 *
 * - reviewer: accept / reject the image with a comment, accept / reject single objects, pin
 *   comments to an object or a point (the "comment" tool), a diff toggle that highlights objects
 *   added / removed / modified against the submitted revision or against the model's proposals,
 *   and "Review next" after a decision;
 * - annotator (annotate mode): the comments and object verdicts of the last review, pinned on the
 *   image, each of which can be marked resolved.
 *
 * Pinned comments are sent with the decision (so that they belong to it); until then they are kept
 * in localStorage and the page warns before closing.
 */
import { ApiError, errorText, reviewApi, type CommentInput, type DiffEntry, type ReviewComment, type ReviewState, type Verdict } from "./api";
import type { Editor } from "./editor";
import { polygonsBBox, type BBox, type Geometry, type Point } from "./geometry";
import { icon } from "./icons";
import type { Decoration } from "./render";
import { decodeRLECropped } from "./rle";
import { buildPath } from "./scene";
import type { Annotation } from "./store";
import type { Tool, ToolContext, ToolPointer, ToolRegistry } from "./tools/types";
import { h } from "./ui";

export type DiffMode = "off" | "submitted" | "model";
export type DiffStatus = "added" | "modified" | "unchanged";

const DIFF_COLORS: Record<"added" | "modified" | "removed", string> = { added: "#39d353", modified: "#ffa53d", removed: "#ff4d4d" };

/** A comment pinned in this page that is not on the server yet (sent with the decision). */
interface PendingComment extends CommentInput {
  key: number;
}

interface Ghost {
  entry: DiffEntry;
  path: Path2D | null;
  bbox: BBox;
}

// Keyed by the editor object, which is also the ToolContext the comment tool is given.
const controllers = new WeakMap<object, ReviewMode>();

export function reviewOf(editor: Editor | ToolContext): ReviewMode | undefined {
  return controllers.get(editor);
}

/** Registers the review tools; call before the Editor is created (tools are built at construction). */
export function registerReviewTools(registry: ToolRegistry): void {
  registry.register("comment", createCommentTool);
}

/** Canonical JSON (sorted keys) so that the same geometry compares equal whatever its key order. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`;
  if (v && typeof v === "object") {
    return `{${Object.keys(v as object).sort().map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`).join(",")}}`;
  }
  return JSON.stringify(v);
}

export class ReviewMode {
  state: ReviewState | null = null;
  readonly verdicts = new Map<string, Verdict>();
  pending: PendingComment[] = [];
  diffMode: DiffMode = "off";
  decided = false;
  private submitted: Map<string, Annotation> | null = null;
  private canonCache = new WeakMap<object, string>();
  private ghosts: Ghost[] = [];
  private section!: HTMLElement;
  private body!: HTMLElement;
  private commentList!: HTMLElement;
  private diffSummary!: HTMLElement;
  private diffRemoved!: HTMLElement;
  private decisionButtons: HTMLButtonElement[] = [];
  private error: string | null = null;
  private pendingKey = 0;

  constructor(readonly ed: Editor) {}

  get reviewing(): boolean {
    return this.ed.opts.mode === "review";
  }

  private get storageKey(): string {
    return `annotator:pending-comments:${this.ed.image.id}`;
  }

  // ------------------------------------------------------------ loading

  /** Loads the review state (taking a submitted image for review first in review mode) and builds the UI. */
  async start(): Promise<void> {
    const ed = this.ed;
    if (this.reviewing && ed.image.status === "submitted") {
      try {
        await reviewApi.take(ed.image.id);
      } catch (e) {
        this.error = `You cannot review this image: ${errorText(e)}`;
        ed.setReadOnly({ reason: errorText(e), hint: "Take another image from the review queue (Review next on the dashboard)." });
      }
    }
    try {
      this.state = await reviewApi.state(ed.image.id, this.reviewing);
    } catch (e) {
      if (this.reviewing) this.error = `Could not load the review: ${errorText(e)}`;
      else return; // annotate mode without review data: nothing to show
    }
    if (!this.reviewing && this.state && !this.state.comments.length && !this.state.decisions.length) return;
    if (this.reviewing) {
      this.pending = loadPending(this.storageKey);
      this.pendingKey = this.pending.reduce((m, c) => Math.max(m, c.key), 0);
      const v = this.state?.diff?.submitted_version ?? 0;
      try {
        const rev = v > 0 ? await reviewApi.revision(ed.image.id, v) : { annotations: [] };
        this.submitted = new Map(rev.annotations.map((a) => [a.uid, a]));
      } catch {
        this.submitted = null; // the diff against the submission is then unavailable
      }
      window.addEventListener("beforeunload", (e) => {
        if (this.pending.length && !this.decided) {
          e.preventDefault();
          e.returnValue = "";
        }
      }, { signal: ed.signal });
    }
    this.build();
    // Only now can the comment tool use this controller (its panel exists).
    controllers.set(ed, this);
    ed.ui.addRowDecorator((a, row) => this.decorateRow(a, row));
    ed.addDecorator((d) => this.decorate(d));
    ed.root.addEventListener("editor:change", () => this.onChange(), { signal: ed.signal });
    ed.emit("review:ready", { state: this.state });
  }

  // ------------------------------------------------------------ panel

  private build(): void {
    this.body = h("div", { class: "ed-review-body" });
    this.commentList = h("div", { class: "ed-list ed-comments", testid: "comment-list" });
    this.diffSummary = h("span", { class: "ed-small", testid: "diff-summary" });
    this.diffRemoved = h("div", { class: "ed-list", testid: "diff-removed" });
    this.section = h("section", { class: "ed-review", testid: "review-panel", "data-mode": this.ed.opts.mode }, h("h3", {}, this.reviewing ? "Review" : "Review feedback"), this.body);
    this.ed.ui.addPanelSection(this.section);
    this.renderBody();
  }

  private renderBody(): void {
    const st = this.state;
    const last = st?.decisions[0];
    const parts: (Node | null)[] = [];
    if (this.error) parts.push(h("p", { class: "ed-error", testid: "review-error" }, this.error));
    if (st) {
      const accepted = st.required_accepts > 1 ? ` · accepts ${st.accepted_by.length}/${st.required_accepts}` : "";
      parts.push(h("p", { class: "ed-small" }, h("span", { class: "ed-status-pill", testid: "review-status", "data-status": st.status }, st.status.replace("_", " ")), ` annotated by ${st.annotator ?? "—"} · v${st.version}${accepted}`));
    }
    if (last) {
      parts.push(
        h(
          "div",
          { class: `ed-decision ed-${last.decision}`, testid: "review-last-decision", "data-decision": last.decision },
          h("strong", {}, `${last.decision === "accept" ? "Accepted" : "Rejected"} by ${last.reviewer ?? "?"}`),
          h("span", { class: "ed-small" }, ` · ${new Date(last.created_at).toLocaleString()}`),
          last.comment ? h("div", { testid: "review-last-comment" }, last.comment) : null,
        ),
      );
    }
    if (this.reviewing) {
      const accept = h("button", { type: "button", class: "ed-btn ed-primary", testid: "review-accept", title: "Accept the image (sends the pinned comments too)", onclick: () => void this.decide("accept", "") }, icon("check"), "Accept image");
      const reject = h("button", { type: "button", class: "ed-btn ed-danger", testid: "review-reject", title: "Reject the image with a comment: it goes back to its annotator", onclick: () => this.openReject() }, icon("cross"), "Reject…");
      this.decisionButtons = [accept, reject];
      const disabled = this.decided || !!this.error;
      for (const b of this.decisionButtons) b.disabled = disabled;
      parts.push(h("div", { class: "ed-review-actions" }, accept, reject));
      if (this.decided) parts.push(h("button", { type: "button", class: "ed-btn", testid: "review-next-panel", onclick: () => void this.reviewNext() }, "Review next", icon("play", 10)));
      const select = h(
        "select",
        { testid: "diff-mode", "aria-label": "Highlight changes", onchange: (e: Event) => this.setDiff((e.target as HTMLSelectElement).value as DiffMode) },
        h("option", { value: "off" }, "No highlighting"),
        h("option", { value: "submitted" }, "Changes vs. submitted (reviewer)"),
        h("option", { value: "model" }, "Submitted vs. model proposals"),
      );
      select.value = this.diffMode;
      parts.push(h("div", { class: "ed-diff" }, h("label", { class: "ed-small" }, "Diff ", select), this.diffSummary), this.diffRemoved);
    }
    parts.push(h("h4", {}, "Comments ", h("span", { class: "ed-small", testid: "comment-count" }, `(${this.commentCount()})`)), this.commentList);
    if (this.reviewing) parts.push(h("p", { class: "ed-small ed-hint" }, "Pin a comment: comment tool (C), then click an object or a point."));
    this.body.replaceChildren(...parts.filter((x): x is Node => x !== null));
    this.renderComments();
    this.renderDiff();
  }

  private commentCount(): number {
    return (this.state?.comments.length ?? 0) + this.pending.length;
  }

  private anchorText(c: CommentInput): string {
    if (c.uid) {
      const a = this.ed.store.get(c.uid);
      return a ? `on ${this.ed.labelName(a.label)}` : "on a removed object";
    }
    if (c.x != null && c.y != null) return `at ${Math.round(c.x)}, ${Math.round(c.y)}`;
    return "on the image";
  }

  private renderComments(): void {
    const rows: HTMLElement[] = [];
    let n = 0;
    for (const c of this.state?.comments ?? []) {
      n++;
      const resolve = h("input", { type: "checkbox", testid: "comment-resolve", title: "Resolved", onchange: (e: Event) => void this.resolve(c, (e.target as HTMLInputElement).checked) });
      resolve.checked = c.resolved;
      rows.push(
        h(
          "div",
          { class: `ed-comment${c.resolved ? " ed-resolved" : ""}`, testid: "comment-row", "data-comment-id": c.id, "data-uid": c.uid ?? "", "data-resolved": String(c.resolved), onclick: (e: Event) => !(e.target as HTMLElement).closest("input") && this.focusComment(c) },
          h("span", { class: "ed-pin-no" }, String(n)),
          h("div", { class: "ed-comment-body" }, h("div", { testid: "comment-text" }, c.text), h("div", { class: "ed-small" }, `${c.author ?? "?"} · ${this.anchorText(c)}`)),
          h("label", { class: "ed-small", title: "Mark resolved" }, resolve),
        ),
      );
    }
    for (const c of this.pending) {
      n++;
      rows.push(
        h(
          "div",
          { class: "ed-comment ed-pending", testid: "comment-row", "data-pending": "true", "data-uid": c.uid ?? "", onclick: (e: Event) => !(e.target as HTMLElement).closest("button") && this.focusComment(c) },
          h("span", { class: "ed-pin-no" }, String(n)),
          h("div", { class: "ed-comment-body" }, h("div", { testid: "comment-text" }, c.text), h("div", { class: "ed-small" }, `${this.anchorText(c)} · sent with your decision`)),
          h("button", { type: "button", class: "ed-icon", testid: "comment-remove", title: "Remove", "aria-label": "Remove", onclick: () => this.removePending(c.key) }, icon("cross")),
        ),
      );
    }
    this.commentList.replaceChildren(...rows);
    const count = this.body.querySelector('[data-testid="comment-count"]');
    if (count) count.textContent = `(${this.commentCount()})`;
  }

  private focusComment(c: CommentInput): void {
    if (c.uid && this.ed.store.has(c.uid)) this.ed.select(c.uid);
    else if (c.x != null && c.y != null) {
      const v = this.ed.viewport;
      const [sx, sy] = v.toScreen([c.x, c.y]);
      v.panBy(v.width / 2 - sx, v.height / 2 - sy);
      this.ed.viewChanged();
    }
  }

  private async resolve(c: ReviewComment, resolved: boolean): Promise<void> {
    try {
      const updated = await reviewApi.resolveComment(c.id, resolved);
      Object.assign(c, updated);
      this.renderComments();
      this.ed.renderer.invalidate("static");
    } catch (e) {
      this.ed.ui.message(`Could not update the comment: ${errorText(e)}`, "error");
      this.renderComments();
    }
  }

  // ------------------------------------------------------------ comments

  addPending(c: CommentInput): void {
    this.pending.push({ ...c, key: ++this.pendingKey });
    savePending(this.storageKey, this.pending);
    this.renderComments();
    this.ed.ui.refreshRows();
    this.ed.renderer.invalidate("static");
    this.ed.emit("review:comment", { comment: c });
  }

  private removePending(key: number): void {
    this.pending = this.pending.filter((c) => c.key !== key);
    savePending(this.storageKey, this.pending);
    this.renderComments();
    this.ed.ui.refreshRows();
    this.ed.renderer.invalidate("static");
  }

  /** Ask for the text of a comment pinned to `uid` or to `point`. */
  askComment(uid: string | null, point: Point | null): void {
    const text = h("textarea", { rows: 3, class: "ed-textarea", testid: "comment-input", placeholder: "What should be fixed?" });
    const where = uid ? this.anchorText({ text: "", uid }) : point ? this.anchorText({ text: "", x: point[0], y: point[1] }) : "on the image";
    const save = h("button", { type: "button", class: "ed-btn ed-primary", testid: "comment-save", onclick: () => {
      const t = text.value.trim();
      if (!t) return text.focus();
      this.ed.ui.closeDialog();
      this.addPending(uid ? { text: t, uid } : point ? { text: t, x: round2(point[0]), y: round2(point[1]) } : { text: t });
    } }, "Pin comment");
    const cancel = h("button", { type: "button", class: "ed-btn", testid: "dialog-close", onclick: () => this.ed.ui.closeDialog() }, "Cancel");
    this.ed.ui.showDialog("comment-dialog", `Comment ${where}`, [text], [save, cancel]);
    // After the click that opened the dialog has finished moving the focus to the stage.
    setTimeout(() => text.focus(), 0);
  }

  // ------------------------------------------------------------ verdicts

  setVerdict(uid: string, v: Verdict): void {
    if (this.verdicts.get(uid) === v) this.verdicts.delete(uid);
    else this.verdicts.set(uid, v);
    this.ed.ui.onRowState(uid);
    this.ed.renderer.invalidate("static");
    this.ed.emit("review:verdict", { uid, verdict: this.verdicts.get(uid) ?? null });
  }

  /** The object verdicts of the last decision (what the annotator is shown). */
  private lastVerdict(uid: string): Verdict | undefined {
    return this.state?.decisions[0]?.objects.find((o) => o.uid === uid)?.decision;
  }

  private decorateRow(a: Annotation, row: HTMLElement): void {
    const comments = this.commentsOn(a.uid);
    if (comments) row.append(h("span", { class: "ed-badge-small", testid: "row-comments", title: `${comments} comment(s)` }, icon("comment", 12), String(comments)));
    if (this.reviewing) {
      const v = this.verdicts.get(a.uid);
      row.dataset.verdict = v ?? "";
      row.append(
        h("button", { type: "button", class: "ed-icon ed-ok", testid: "object-accept", title: "Accept this object", "aria-label": "Accept this object", "aria-pressed": String(v === "accept"), onclick: () => this.setVerdict(a.uid, "accept") }, icon("check")),
        h("button", { type: "button", class: "ed-icon ed-bad", testid: "object-reject", title: "Reject this object", "aria-label": "Reject this object", "aria-pressed": String(v === "reject"), onclick: () => this.setVerdict(a.uid, "reject") }, icon("cross")),
      );
    } else {
      const v = this.lastVerdict(a.uid);
      row.dataset.verdict = v ?? "";
      if (v === "reject") row.append(h("span", { class: "ed-bad", testid: "object-verdict", title: "Rejected by the reviewer" }, icon("cross")));
    }
    const status = this.diffStatus(a);
    if (status) row.dataset.diff = status;
    else delete row.dataset.diff;
  }

  private commentsOn(uid: string): number {
    return (this.state?.comments.filter((c) => c.uid === uid && !c.resolved).length ?? 0) + this.pending.filter((c) => c.uid === uid).length;
  }

  // ------------------------------------------------------------ diff

  setDiff(mode: DiffMode): void {
    this.diffMode = mode;
    this.renderDiff();
    this.ed.ui.refreshRows();
    this.ed.renderer.invalidate("static");
    this.ed.emit("review:diff", { mode });
  }

  private canon(g: Geometry): string {
    let s = this.canonCache.get(g);
    if (s === undefined) {
      s = canonical(g);
      this.canonCache.set(g, s);
    }
    return s;
  }

  diffStatus(a: Annotation): DiffStatus | undefined {
    if (this.diffMode === "submitted") {
      if (!this.submitted) return undefined;
      const before = this.submitted.get(a.uid);
      if (!before) return "added";
      return before.label !== a.label || this.canon(before.geometry) !== this.canon(a.geometry) ? "modified" : "unchanged";
    }
    if (this.diffMode === "model") {
      const d = this.state?.diff?.proposals;
      if (!d) return undefined;
      if (d.added.some((e) => e.uid === a.uid)) return "added";
      if (d.modified.some((e) => e.uid === a.uid)) return "modified";
      if (d.unchanged.includes(a.uid)) return "unchanged";
      return undefined; // drawn after the submission: not part of this comparison
    }
    return undefined;
  }

  private removedEntries(): DiffEntry[] {
    if (this.diffMode === "submitted" && this.submitted) {
      return [...this.submitted.values()].filter((a) => !this.ed.store.has(a.uid)).map((a) => ({ uid: a.uid, label: a.label, geometry: a.geometry }));
    }
    if (this.diffMode === "model") return this.state?.diff?.proposals.removed ?? [];
    return [];
  }

  private renderDiff(): void {
    if (!this.reviewing || !this.diffSummary) return;
    const removed = this.removedEntries();
    this.ghosts = removed.filter((e) => e.geometry).map((e) => ghostOf(e));
    if (this.diffMode === "off") {
      this.diffSummary.textContent = "";
      this.diffRemoved.replaceChildren();
      return;
    }
    if (this.diffMode === "submitted" && !this.submitted) {
      this.diffSummary.textContent = "The submitted version could not be loaded";
      return;
    }
    let added = 0, modified = 0;
    for (const a of this.ed.store.all()) {
      const s = this.diffStatus(a);
      if (s === "added") added++;
      else if (s === "modified") modified++;
    }
    this.diffSummary.textContent = `+${added} added · ${modified} modified · −${removed.length} removed`;
    this.diffSummary.dataset.added = String(added);
    this.diffSummary.dataset.modified = String(modified);
    this.diffSummary.dataset.removed = String(removed.length);
    this.diffRemoved.replaceChildren(
      ...removed.map((e) =>
        h(
          "div",
          { class: "ed-row", testid: "diff-removed-row", "data-uid": e.uid ?? "", "data-prediction-id": e.prediction ?? "" },
          h("span", { class: "ed-swatch ed-dashed", style: `border-color:${DIFF_COLORS.removed}` }),
          h("span", { class: "ed-name" }, `${this.ed.labelName(e.label)} (removed)`),
          e.score != null ? h("span", { class: "ed-small" }, e.score.toFixed(2)) : null,
        ),
      ),
    );
  }

  private diffTimer = 0;

  private onChange(): void {
    // Edits by the reviewer change the "vs. submitted" picture; batch to one update per frame.
    if (this.diffMode !== "submitted" || this.diffTimer) return;
    this.diffTimer = requestAnimationFrame(() => {
      this.diffTimer = 0;
      this.renderDiff();
      this.ed.renderer.invalidate("static");
    });
  }

  // ------------------------------------------------------------ drawing

  private decorate(d: Decoration): void {
    const { ctx, scale: s } = d;
    const ed = this.ed;
    if (this.diffMode !== "off") {
      d.toImage();
      ctx.lineWidth = 3 / s;
      for (const a of ed.drawOrder()) {
        if (!d.inView.has(a.uid) || ed.isHidden(a.uid)) continue;
        const status = this.diffStatus(a);
        if (status !== "added" && status !== "modified") continue;
        ctx.strokeStyle = DIFF_COLORS[status];
        const path = ed.scene.path(a.uid, d.level);
        const e = ed.scene.get(a.uid);
        if (path) ctx.stroke(path);
        else if (e) ctx.strokeRect(e.bbox.minX, e.bbox.minY, e.bbox.maxX - e.bbox.minX, e.bbox.maxY - e.bbox.minY);
      }
      ctx.setLineDash([6 / s, 4 / s]);
      ctx.lineWidth = 2 / s;
      ctx.strokeStyle = DIFF_COLORS.removed;
      for (const g of this.ghosts) {
        if (g.path) ctx.stroke(g.path);
        else ctx.strokeRect(g.bbox.minX, g.bbox.minY, g.bbox.maxX - g.bbox.minX, g.bbox.maxY - g.bbox.minY);
      }
      ctx.setLineDash([]);
    }
    // Rejected objects: a red outline for the reviewer's verdict and for the annotator's feedback.
    d.toImage();
    ctx.lineWidth = 2.5 / s;
    ctx.setLineDash([3 / s, 3 / s]);
    ctx.strokeStyle = DIFF_COLORS.removed;
    for (const a of ed.drawOrder()) {
      const v = this.reviewing ? this.verdicts.get(a.uid) : this.lastVerdict(a.uid);
      if (v !== "reject" || !d.inView.has(a.uid)) continue;
      const e = ed.scene.get(a.uid);
      if (e) ctx.strokeRect(e.bbox.minX - 2 / s, e.bbox.minY - 2 / s, e.bbox.maxX - e.bbox.minX + 4 / s, e.bbox.maxY - e.bbox.minY + 4 / s);
    }
    ctx.setLineDash([]);
    this.drawPins(d);
  }

  /** Numbered pins (same numbers as the comment list) in screen space. */
  private drawPins(d: Decoration): void {
    const { ctx } = d;
    const v = this.ed.viewport;
    const pins: [Point, number, boolean][] = [];
    let n = 0;
    const anchor = (c: CommentInput): Point | null => {
      if (c.x != null && c.y != null) return [c.x, c.y];
      if (c.uid) {
        const e = this.ed.scene.get(c.uid);
        return e ? [e.bbox.maxX, e.bbox.minY] : null;
      }
      return null;
    };
    for (const c of this.state?.comments ?? []) {
      n++;
      const p = anchor(c);
      if (p && !c.resolved) pins.push([p, n, false]);
    }
    for (const c of this.pending) {
      n++;
      const p = anchor(c);
      if (p) pins.push([p, n, true]);
    }
    if (!pins.length) return;
    d.toScreen();
    ctx.font = "bold 11px sans-serif";
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    for (const [p, num, pending] of pins) {
      const [x, y] = v.toScreen(p);
      if (x < -20 || y < -20 || x > v.width + 20 || y > v.height + 20) continue;
      ctx.beginPath();
      ctx.arc(x, y, 9, 0, Math.PI * 2);
      ctx.fillStyle = pending ? "#ffd54a" : "#ff9f1a";
      ctx.fill();
      ctx.lineWidth = 1.5;
      ctx.strokeStyle = "#000";
      ctx.stroke();
      ctx.fillStyle = "#000";
      ctx.fillText(String(num), x, y + 0.5);
    }
    ctx.textAlign = "start";
  }

  // ------------------------------------------------------------ decisions

  private openReject(): void {
    const rejected = [...this.verdicts.values()].filter((v) => v === "reject").length;
    const text = h("textarea", { rows: 4, class: "ed-textarea", testid: "review-reject-comment", placeholder: "What must the annotator fix?" });
    const err = h("p", { class: "ed-error", testid: "review-dialog-error" });
    const confirm = h("button", { type: "button", class: "ed-btn ed-danger", testid: "review-confirm-reject", onclick: async () => {
      confirm.disabled = true;
      const msg = await this.decide("reject", text.value.trim());
      if (msg) {
        err.textContent = msg;
        confirm.disabled = false;
      }
    } }, "Reject and send back");
    const cancel = h("button", { type: "button", class: "ed-btn", testid: "dialog-close", onclick: () => this.ed.ui.closeDialog() }, "Cancel");
    this.ed.ui.showDialog(
      "review-reject-dialog",
      "Reject this image",
      [
        h("p", { class: "ed-small" }, `${rejected} object(s) marked rejected · ${this.pending.length} pinned comment(s) will be sent. The image goes back to ${this.state?.annotator ?? "its annotator"}. Say what must be fixed: a comment here, or pinned comments, or rejected objects.`),
        text,
        err,
      ],
      [confirm, cancel],
    );
    text.focus();
  }

  /** Save the reviewer's corrections, then record the decision. Returns an error text, or null. */
  async decide(decision: Verdict, comment: string): Promise<string | null> {
    const ed = this.ed;
    const objects = [...this.verdicts].filter(([uid]) => ed.store.has(uid)).map(([uid, v]) => ({ uid, decision: v }));
    if (decision === "reject" && !comment && !this.pending.length && !objects.some((o) => o.decision === "reject")) {
      const msg = "Say what must be fixed: write a comment, pin one to an object or a point, or mark an object rejected.";
      ed.ui.message(msg, "error");
      return msg;
    }
    if (decision === "accept" && objects.some((o) => o.decision === "reject")) {
      const msg = "Some objects are marked rejected: reject the image, or fix them and clear their mark.";
      ed.ui.message(msg, "error");
      return msg;
    }
    for (const b of this.decisionButtons) b.disabled = true;
    const fail = (msg: string) => {
      for (const b of this.decisionButtons) b.disabled = false;
      ed.ui.message(msg, "error");
      return msg;
    };
    if (!(await ed.saveNow())) return fail(`Your corrections are not all saved: ${ed.unsavedReason()}`);
    try {
      const res = await reviewApi.decide(ed.image.id, {
        decision,
        version: ed.autosave.version,
        comment,
        objects,
        comments: this.pending.map(({ text, uid, x, y }) => (uid ? { text, uid } : x != null ? { text, x, y } : { text })),
      });
      this.decided = true;
      this.pending = [];
      savePending(this.storageKey, []);
      try {
        this.state = await reviewApi.state(ed.image.id, true);
      } catch {
        // The decision is recorded; a stale panel is only cosmetic.
      }
      this.renderBody();
      ed.ui.refreshRows();
      ed.renderer.invalidate("static");
      ed.emit("review:decided", { decision: res.decision });
      // The image left this reviewer's hands: further edits would be refused by the server.
      ed.setReadOnly({
        reason: decision === "reject" ? "You rejected this image; it went back to its annotator." : res.image.status === "accepted" ? "You accepted this image." : "Your accept is recorded.",
        hint: "Open the next image to review (Review next).",
      });
      this.showDecided(decision, res.accepts, res.required_accepts, res.image.status);
      return null;
    } catch (e) {
      return fail(e instanceof ApiError ? e.message : errorText(e));
    }
  }

  private showDecided(decision: Verdict, accepts: number, required: number, status: string): void {
    const what =
      decision === "reject"
        ? `Rejected: the image went back to ${this.state?.annotator ?? "its annotator"} with your comments.`
        : status === "accepted"
          ? "Accepted."
          : `Your accept is recorded (${accepts} of ${required}); the image waits for another reviewer.`;
    const info = h("p", { testid: "review-decided-text" }, what);
    const next = h("button", { type: "button", class: "ed-btn ed-primary", testid: "review-next", onclick: () => void this.reviewNext(info) }, "Review next", icon("play", 10));
    this.ed.ui.showDialog(
      "review-decided-dialog",
      decision === "reject" ? "Image rejected" : "Image accepted",
      [info],
      [next, h("a", { class: "ed-btn", href: `/projects/${this.ed.opts.projectId}/`, testid: "review-back-to-project" }, "Back to the project")],
    );
  }

  /** Take the next submitted image from the review queue and open it in review mode. */
  async reviewNext(info?: HTMLElement): Promise<void> {
    try {
      const next = await reviewApi.next(this.ed.opts.projectId);
      if (!next) {
        const text = "The review queue is empty: nothing else is waiting for review.";
        if (info) {
          info.textContent = text;
          info.dataset.testid = "review-queue-empty";
        } else this.ed.ui.message(text);
        return;
      }
      this.ed.navigate(`/images/${next.id}/edit/?mode=review`);
    } catch (e) {
      this.ed.ui.message(`Could not get the next image: ${errorText(e)}`, "error");
    }
  }
}

function ghostOf(e: DiffEntry): Ghost {
  const g = e.geometry!;
  if (g.type === "polygons") return { entry: e, path: buildPath(g, 0), bbox: polygonsBBox(g) };
  const m = decodeRLECropped(g.rle);
  return { entry: e, path: null, bbox: { minX: m.x0, minY: m.y0, maxX: m.x0 + m.w, maxY: m.y0 + m.h } };
}

function round2(v: number): number {
  return Math.round(v * 100) / 100;
}

function loadPending(key: string): PendingComment[] {
  try {
    const v = JSON.parse(localStorage.getItem(key) ?? "[]") as PendingComment[];
    return Array.isArray(v) ? v : [];
  } catch {
    return [];
  }
}

function savePending(key: string, pending: PendingComment[]): void {
  try {
    if (pending.length) localStorage.setItem(key, JSON.stringify(pending));
    else localStorage.removeItem(key);
  } catch {
    // Private mode / quota: pending comments then only live as long as the page.
  }
}

/** Comment tool: click an object to pin a comment to it, or empty image to pin it to that point. */
export function createCommentTool(ctx: ToolContext): Tool {
  return {
    name: "comment",
    title: "Pin comment",
    label: "Comment",
    shortcut: "c",
    cursor: "crosshair",
    keys: [["Click an object / a point", "pin a comment to it (sent with your decision)"]],
    onPointerDown(p: ToolPointer) {
      if (p.button !== 0) return;
      const review = reviewOf(ctx);
      if (!review) return ctx.message("The review is still loading; try again in a moment", "error");
      const [x, y] = p.image;
      if (x < 0 || y < 0 || x > ctx.image.width || y > ctx.image.height) return ctx.message("Click on the image", "error");
      const uid = ctx.stackAt(p.image)[0] ?? null;
      if (uid) ctx.select(uid);
      review.askComment(uid, uid ? null : [x, y]);
    },
  };
}
