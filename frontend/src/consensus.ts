/**
 * Consensus in review mode: when several annotators drew their own versions of the image, the
 * side panel lists them (who, how many objects) with the image's agreement and each merged
 * object's agreement, and any version can be shown over the image as dashed outlines in its own
 * colour, to compare with the merge the reviewer is accepting or editing. Built only on the
 * editor's extension points (a panel section and a decorator), like review.ts.
 */
import { consensusApi, errorText, type ConsensusState } from "./api";
import type { Editor } from "./editor";
import type { Decoration } from "./render";
import { outlineOf, strokeOutline, type Outline } from "./scene";
import { h } from "./ui";

const VERSION_COLORS = ["#00c2ff", "#ffd400", "#ff5cf0", "#7cff6b", "#ff8a3d", "#b58cff"];

function percent(v: number | null): string {
  return v == null ? "—" : `${Math.round(v * 100)}%`;
}

export class ConsensusPanel {
  state: ConsensusState | null = null;
  /** Indexes of the versions shown over the image. */
  readonly shown = new Set<number>();
  private outlines: Outline[][] = [];
  private section!: HTMLElement;

  constructor(private readonly ed: Editor) {}

  async start(): Promise<void> {
    try {
      this.state = await consensusApi.get(this.ed.image.id);
    } catch (e) {
      this.ed.message(`Could not load the annotators' versions: ${errorText(e)}`, "error");
      return;
    }
    if (!this.state.versions.length) return; // drawn by one annotator: nothing to compare
    this.outlines = this.state.versions.map((v) => v.annotations.map((a) => outlineOf(a.geometry)));
    this.section = h("section", { class: "ed-consensus", testid: "consensus-panel" });
    this.ed.ui.addPanelSection(this.section);
    this.ed.addDecorator((d) => this.decorate(d));
    this.render();
    this.ed.emit("consensus:ready", { state: this.state });
  }

  toggle(index: number, on: boolean): void {
    if (on) this.shown.add(index);
    else this.shown.delete(index);
    this.ed.invalidate("static");
  }

  private render(): void {
    const st = this.state!;
    const submitted = st.versions.filter((v) => v.status === "submitted").length;
    const rows = st.versions.map((v, i) => {
      const box = h("input", {
        type: "checkbox", testid: "consensus-version-toggle", "aria-label": `Show ${v.annotator}'s version`,
        onchange: (e: Event) => this.toggle(i, (e.target as HTMLInputElement).checked),
      }) as HTMLInputElement;
      box.checked = this.shown.has(i);
      return h(
        "label",
        { class: "ed-row", testid: "consensus-version", "data-annotator": v.annotator, "data-status": v.status },
        box,
        h("span", { class: "ed-swatch ed-dashed", style: `border-color:${VERSION_COLORS[i % VERSION_COLORS.length]}` }),
        h("span", { class: "ed-name" }, v.annotator),
        h("span", { class: "ed-small" }, v.status === "submitted" ? `${v.annotations.length} objects` : v.status.replace("_", " ")),
      );
    });
    const merged = st.merge.map((m) =>
      h(
        "div",
        { class: "ed-row", testid: "consensus-merged", "data-agreement": m.agreement ?? "" },
        h("span", { class: "ed-swatch", style: `background:${this.ed.labelColor(m.label)}` }),
        h("span", { class: "ed-name" }, this.ed.labelName(m.label)),
        h("span", { class: "ed-small" }, `drawn by ${m.support} · agreement ${percent(m.agreement)}`),
      ),
    );
    this.section.replaceChildren(
      h("h3", {}, "Annotators' versions"),
      h(
        "p",
        { class: "ed-small" },
        h("span", { testid: "consensus-agreement", "data-agreement": st.agreement ?? "" }, `Agreement ${percent(st.agreement)}`),
        ` · ${submitted}/${st.annotators} submitted · the objects below are their merge (a majority of annotators each)`,
      ),
      h("div", { class: "ed-list", testid: "consensus-versions" }, ...rows),
      h("h4", {}, "Merged objects"),
      h("div", { class: "ed-list" }, ...merged),
    );
  }

  private decorate(d: Decoration): void {
    if (!this.shown.size) return;
    const { ctx, scale: s } = d;
    d.toImage();
    ctx.lineWidth = 2 / s;
    ctx.setLineDash([5 / s, 3 / s]);
    for (const i of this.shown) {
      ctx.strokeStyle = VERSION_COLORS[i % VERSION_COLORS.length];
      for (const o of this.outlines[i] ?? []) {
        strokeOutline(ctx, o);
      }
    }
    ctx.setLineDash([]);
  }
}
