/**
 * The history panel: every saved version of this image's annotations (who, when, what changed:
 * +added −removed ~changed, and what a restore came from), a preview of any version drawn over the
 * image, and restore in one click. Restoring goes through the server's conflict check: it is based
 * on the version the editor holds, so someone else's newer save is never overwritten unseen.
 */
import { ApiError, errorText, historyApi, type RevisionInfo } from "../api";
import { plural, shortTime, timeAgo } from "../format";
import { polygonsBBox } from "../geometry";
import { icon } from "../icons";
import type { Decoration } from "../render";
import { decodeRLECropped } from "../rle";
import { buildPath, maskToCanvas } from "../scene";
import type { Annotation } from "../store";
import { h } from "../ui";
import type { Viewport } from "../viewport";

/** What the panel uses of the editor: the image, its saved version, drawing over it, restoring. */
export interface HistoryHost {
  readonly image: { readonly id: number };
  readonly root: HTMLElement;
  /** Aborted when the editor is torn down: the panel's listeners go with it. */
  readonly signal: AbortSignal;
  readonly viewport: Pick<Viewport, "toScreen">;
  readonly autosave: { readonly version: number };
  addDecorator(fn: (d: Decoration) => void): void;
  invalidate(layer: "static" | "interaction" | "view" | "all"): void;
  readOnly(): boolean;
  saveNow(): Promise<boolean>;
  unsavedReason(): string;
  /** The server's set at `version` replaces the store's (after a restore). */
  loadServerSet(annotations: Annotation[], version: number): void;
  message(text: string, kind?: "info" | "error"): void;
  emit(name: string, detail: Record<string, unknown>): void;
  objectNumber(uid: string): number;
  labelName(label: number | null): string;
}

const ACTIONS: Record<RevisionInfo["action"], string> = {
  save: "saved",
  restore: "restored",
  import: "imported",
  review: "changed in review",
};

const PREVIEW_COLOR = "#00e5ff";

interface Preview {
  version: number;
  annotations: Annotation[];
  shapes: { path: Path2D | null; mask: { canvas: HTMLCanvasElement; x: number; y: number } | null; x: number; y: number; label: string }[];
}

export class HistoryPanel {
  readonly el: HTMLDetailsElement;
  private readonly list: HTMLElement;
  private readonly bar: HTMLElement;
  private revisions: RevisionInfo[] = [];
  private preview: Preview | null = null;
  private loading = false;
  private refreshTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(private readonly ed: HistoryHost) {
    this.list = h("div", { class: "ed-list ed-history", testid: "revision-list" });
    this.el = h(
      "details",
      { class: "ed-history-panel", testid: "history-panel" },
      h("summary", {}, icon("history", 12), " History"),
      this.list,
    );
    this.el.addEventListener("toggle", () => {
      if (this.el.open) void this.load();
    });
    this.bar = h("div", { class: "ed-preview-bar", testid: "preview-bar", hidden: true });
    // The bar sits on the stage, whose pointerdown captures the pointer (and so the click): keep ours.
    this.bar.addEventListener("pointerdown", (e) => e.stopPropagation());
    ed.addDecorator((d) => this.decorate(d));
    // Each save adds a version: keep an open list current (once the saving has settled).
    ed.root.addEventListener("editor:saved", () => this.scheduleRefresh(), { signal: ed.signal });
  }

  /** The bar over the stage that says which version is being previewed (mounted by the UI). */
  get previewBar(): HTMLElement {
    return this.bar;
  }

  private scheduleRefresh(): void {
    if (!this.el.open) return;
    if (this.refreshTimer) clearTimeout(this.refreshTimer);
    this.refreshTimer = setTimeout(() => void this.load(), 600);
  }

  async load(): Promise<void> {
    if (this.loading) return;
    this.loading = true;
    try {
      this.revisions = await historyApi.list(this.ed.image.id);
      this.render();
    } catch (e) {
      this.list.replaceChildren(h("p", { class: "ed-small ed-error" }, `The history could not be loaded: ${errorText(e)}`));
    } finally {
      this.loading = false;
    }
  }

  private render(): void {
    const ed = this.ed;
    const current = ed.autosave.version;
    if (!this.revisions.length) {
      this.list.replaceChildren(h("p", { class: "ed-small ed-hint", testid: "revision-none" }, "No saved versions yet."));
      return;
    }
    this.list.replaceChildren(
      ...this.revisions.map((r) => {
        const s = r.summary ?? {};
        const changes = h(
          "span",
          { class: "ed-changes", testid: "revision-changes", title: `${s.added ?? 0} added, ${s.removed ?? 0} removed, ${s.changed ?? 0} changed` },
          h("span", { class: "ed-plus" }, `+${s.added ?? 0}`),
          h("span", { class: "ed-minus" }, `−${s.removed ?? 0}`),
          h("span", { class: "ed-tilde" }, `~${s.changed ?? 0}`),
        );
        const isCurrent = r.version === current;
        const previewing = this.preview?.version === r.version;
        const previewBtn = h("button", { type: "button", class: "ed-icon", testid: "revision-preview", title: previewing ? "Stop previewing" : `Preview v${r.version} over the image`, "aria-label": `Preview version ${r.version}`, "aria-pressed": String(previewing), onclick: () => void this.togglePreview(r.version) }, icon("eye"));
        // The current version has nothing to restore: a gap keeps the buttons in their columns.
        const restoreBtn = isCurrent || ed.readOnly()
          ? h("span", { class: "ed-icon-gap", "aria-hidden": "true" })
          : h("button", { type: "button", class: "ed-icon", testid: "revision-restore", title: `Restore v${r.version} (a new version; nothing is lost)`, "aria-label": `Restore version ${r.version}`, onclick: () => void this.restore(r.version) }, icon("restore"));
        return h(
          "div",
          { class: `ed-row ed-revision${isCurrent ? " ed-current" : ""}${previewing ? " ed-selected" : ""}`, testid: "revision-row", "data-version": r.version, "data-action": r.action },
          h(
            "div",
            { class: "ed-revision-text", title: `${ACTIONS[r.action] ?? r.action} by ${r.author ?? "—"} ${shortTime(r.created_at)} · ${plural(r.object_count, "object")}` },
            h(
              "div",
              {},
              h("strong", {}, `v${r.version}`),
              ` ${ACTIONS[r.action] ?? r.action}`,
              r.restored_from != null ? h("span", { testid: "revision-restored-from" }, ` from v${r.restored_from}`) : null,
              isCurrent ? h("span", { class: "ed-pill" }, "current") : null,
            ),
            h("div", { class: "ed-small" }, `${r.author ?? "—"} · `, h("span", {}, timeAgo(r.created_at)), " · ", changes),
          ),
          previewBtn,
          restoreBtn,
        );
      }),
    );
  }

  async togglePreview(version: number): Promise<void> {
    if (this.preview?.version === version) return this.closePreview();
    try {
      const rev = version === 0 ? { annotations: [] as Annotation[] } : await historyApi.get(this.ed.image.id, version);
      this.preview = { version, annotations: rev.annotations, shapes: rev.annotations.map((a) => this.shape(a)) };
    } catch (e) {
      return this.ed.message(`Could not load version ${version}: ${errorText(e)}`, "error");
    }
    const n = this.preview.annotations.length;
    const restore = this.ed.readOnly() || version === this.ed.autosave.version
      ? null
      : h("button", { type: "button", class: "ed-btn ed-primary", testid: "preview-restore", onclick: () => void this.restore(version) }, icon("restore"), "Restore this version");
    this.bar.replaceChildren(
      h("span", { testid: "preview-text" }, `Previewing v${version} (${plural(n, "object")}, dashed) over the current objects`),
      restore ?? "",
      h("button", { type: "button", class: "ed-btn", testid: "preview-close", onclick: () => this.closePreview() }, "Close preview"),
    );
    this.bar.hidden = false;
    this.bar.dataset.version = String(version);
    this.render();
    this.ed.invalidate("static");
  }

  closePreview(): void {
    this.preview = null;
    this.bar.hidden = true;
    delete this.bar.dataset.version;
    this.render();
    this.ed.invalidate("static");
  }

  /** Restore `version`: save what is pending, then ask the server (409 when someone saved since). */
  async restore(version: number): Promise<void> {
    const ed = this.ed;
    if (ed.readOnly()) return;
    if (!(await ed.saveNow())) return ed.message(`Not restored: ${ed.unsavedReason()}`, "error");
    try {
      const res = await historyApi.restore(ed.image.id, version, ed.autosave.version);
      ed.loadServerSet(res.annotations, res.version);
      if (this.preview) this.closePreview();
      ed.message(`Restored v${version} as v${res.version}`);
      ed.emit("editor:restored", { from: version, version: res.version });
      await this.load();
    } catch (e) {
      if (e instanceof ApiError && e.status === 409) {
        const who = typeof e.body.updated_by === "string" ? e.body.updated_by : "someone";
        ed.message(`Not restored: ${who} saved version ${e.body.current_version} in the meantime. Reload to see it, then restore again.`, "error");
        await this.load();
      } else ed.message(`Restore failed: ${errorText(e)}`, "error");
    }
  }

  private shape(a: Annotation): Preview["shapes"][number] {
    const label = `#${this.ed.objectNumber(a.uid)} ${this.ed.labelName(a.label)}`;
    if (a.geometry.type === "polygons") {
      const b = polygonsBBox(a.geometry);
      return { path: buildPath(a.geometry, 0), mask: null, x: b.minX, y: b.minY, label };
    }
    const m = decodeRLECropped(a.geometry.rle);
    return { path: null, mask: { canvas: maskToCanvas(m, PREVIEW_COLOR), x: m.x0, y: m.y0 }, x: m.x0, y: m.y0, label };
  }

  private decorate(d: Decoration): void {
    const p = this.preview;
    if (!p) return;
    const { ctx, scale: s } = d;
    d.toImage();
    ctx.save();
    ctx.strokeStyle = PREVIEW_COLOR;
    ctx.lineWidth = 2 / s;
    ctx.setLineDash([7 / s, 4 / s]);
    ctx.globalAlpha = 0.9;
    for (const shape of p.shapes) {
      if (shape.path) ctx.stroke(shape.path);
      else if (shape.mask) {
        ctx.globalAlpha = 0.45;
        ctx.drawImage(shape.mask.canvas, shape.mask.x, shape.mask.y);
        ctx.globalAlpha = 0.9;
      }
    }
    ctx.restore();
    d.toScreen();
    ctx.save();
    ctx.font = "11px system-ui, sans-serif";
    ctx.fillStyle = PREVIEW_COLOR;
    const v = this.ed.viewport;
    for (const shape of p.shapes) {
      const [x, y] = v.toScreen([shape.x, shape.y]);
      ctx.fillText(shape.label, x + 2, y - 3);
    }
    ctx.restore();
  }
}
