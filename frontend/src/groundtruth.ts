/**
 * A ground-truth attempt over the truth: opened from the Quality page's conflicts
 * (`?attempt=<id>`), the editor shows the ground-truth image (its frozen objects) and this panel
 * draws the annotator's attempt over it as dashed outlines, toggled by a checkbox (on at first),
 * with the attempt's scores. Built on the editor's extension points (a panel section and a
 * decorator), like consensus.ts.
 */
import { errorText, groundTruthApi, type FeedbackConflict, type GroundTruthAttempt, type SubmitFeedback } from "./api";
import type { Editor } from "./editor";
import type { Decoration } from "./render";
import { outlineOf, strokeOutline, type Outline } from "./scene";
import { h } from "./ui";

const ATTEMPT_COLOR = "#ff5cf0";

function score(v: number | null): string {
  return v == null ? "—" : v.toFixed(2);
}

/** A conflict of the annotator's attempt in plain words (the immediate feedback's list). */
export function conflictText(c: FeedbackConflict): string {
  const iou = `IoU ${c.iou.toFixed(2)}`;
  switch (c.kind) {
    case "missing":
      return `Missed: a ${c.truth_label ?? "object"} you did not draw`;
    case "extra":
      return `Extra: a ${c.attempt_label ?? "object"} you drew that is not there`;
    case "wrong_label":
      return `Wrong label: you labelled a ${c.truth_label ?? "object"} as ${c.attempt_label ?? "nothing"} (${iou})`;
    case "low_overlap":
      return `Loose outline: your ${c.attempt_label ?? "object"} overlaps the truth only partly (${iou})`;
  }
}

/** After a ground-truth image is submitted (with the project's feedback on): the score and the
 * conflicts, then `next` (the next image) on "Next image". */
export function showFeedback(ed: Editor, f: SubmitFeedback, next: () => void): void {
  const conflicts = f.conflicts.length
    ? h("ul", { testid: "feedback-conflicts" }, ...f.conflicts.map((c) => h("li", {}, conflictText(c))))
    : h("p", { testid: "feedback-conflicts" }, "No conflicts: every object matches.");
  ed.ui.showDialog(
    "feedback-dialog",
    "Your score on this check image",
    [
      h("p", {}, "This image was a check against a known answer."),
      h("p", { testid: "feedback-scores" }, `F1 ${score(f.f1)} · precision ${score(f.precision)} · recall ${score(f.recall)} · mean IoU ${score(f.mean_iou)}`),
      conflicts,
    ],
    [h("button", { type: "button", class: "ed-btn ed-primary", testid: "feedback-next", onclick: () => { ed.ui.closeDialog(); next(); } }, "Next image")],
    false,
  );
}

/** The attempt named by the page's `?attempt=` parameter, or null. */
export function attemptParam(search: string): number | null {
  const v = new URLSearchParams(search).get("attempt");
  return v && /^\d+$/.test(v) ? Number(v) : null;
}

export class AttemptOverlay {
  attempt: GroundTruthAttempt | null = null;
  shown = true;
  private outlines: Outline[] = [];

  constructor(private readonly ed: Editor, private readonly attemptId: number) {}

  async start(): Promise<void> {
    try {
      this.attempt = await groundTruthApi.attempt(this.attemptId);
    } catch (e) {
      this.ed.message(`Could not load the attempt: ${errorText(e)}`, "error");
      return;
    }
    if (this.attempt.image !== this.ed.image.id) return; // a link to another image's attempt
    const a = this.attempt;
    this.outlines = a.annotations.map((o) => outlineOf(o.geometry));
    const box = h("input", {
      type: "checkbox", testid: "attempt-toggle", "aria-label": `Show ${a.annotator}'s attempt over the ground truth`,
      onchange: (e: Event) => this.toggle((e.target as HTMLInputElement).checked),
    }) as HTMLInputElement;
    box.checked = this.shown;
    this.ed.ui.addPanelSection(
      h(
        "section",
        { class: "ed-attempt", testid: "attempt-panel", "data-annotator": a.annotator },
        h("h3", {}, "Ground-truth attempt"),
        h(
          "label",
          { class: "ed-row" },
          box,
          h("span", { class: "ed-swatch ed-dashed ed-attempt-swatch" }),
          h("span", { class: "ed-name" }, `${a.annotator}'s objects (${a.annotations.length})`),
        ),
        h(
          "p",
          { class: "ed-small", testid: "attempt-scores" },
          `The objects listed are the ground truth. F1 ${score(a.f1)} · precision ${score(a.precision)} · recall ${score(a.recall)} · mean IoU ${score(a.mean_iou)}`,
        ),
      ),
    );
    this.ed.addDecorator((d) => this.decorate(d));
    this.ed.invalidate("static");
    this.ed.emit("attempt:ready", { attempt: a.id });
  }

  toggle(on: boolean): void {
    this.shown = on;
    this.ed.invalidate("static");
  }

  private decorate(d: Decoration): void {
    if (!this.shown) return;
    const { ctx, scale: s } = d;
    d.toImage();
    ctx.lineWidth = 2 / s;
    ctx.setLineDash([5 / s, 3 / s]);
    ctx.strokeStyle = ATTEMPT_COLOR;
    for (const o of this.outlines) {
      strokeOutline(ctx, o);
    }
    ctx.setLineDash([]);
  }
}
