/**
 * The attribute panel of the selected object, built from its label's schema: a checkbox for yes/no,
 * a number field with its range, a text field, a list for one-of choices and check chips for
 * several-of choices. Required attributes are starred and flagged while unset (submitting is
 * refused until they are set). Every change is one undoable command (AttributeHost.setAttribute).
 */
import { controlOf, describeSpec, formatValue, isEmpty, parseInput, valueProblem, type AttrSpec } from "../attributes";
import type { AnnotationStore } from "../store";
import { h } from "../ui";

/** What the panel uses of the editor: the selected object, its label's schema, one action. */
export interface AttributeHost {
  readonly store: Pick<AnnotationStore, "get">;
  selectedUid(): string | null;
  objectName(uid: string): string;
  labelName(label: number | null): string;
  schemaOf(label: number | null): AttrSpec[];
  readOnly(): boolean;
  isLocked(uid: string): boolean;
  /** One undoable command; false when nothing changed or the image is read-only. */
  setAttribute(uid: string, name: string, value: unknown): boolean;
}

export class AttributePanel {
  readonly el: HTMLElement;
  private readonly title: HTMLElement;
  private readonly body: HTMLElement;
  private shown: { uid: string; version: unknown } | null = null;

  constructor(private readonly ed: AttributeHost) {
    this.title = h("h3", {}, "Attributes");
    this.body = h("div", { class: "ed-attrs" });
    this.el = h("section", { class: "ed-attr-panel", testid: "attribute-panel", hidden: true }, this.title, this.body);
  }

  /** Rebuild for the selected object (nothing selected: the panel hides). */
  refresh(force = false): void {
    const ed = this.ed;
    const uid = ed.selectedUid();
    const a = uid ? ed.store.get(uid) : undefined;
    this.el.hidden = !a;
    if (!a) {
      this.shown = null;
      return;
    }
    // The same object as shown: nothing to do (typing in a field must not lose its focus).
    if (!force && this.shown && this.shown.uid === a.uid && this.shown.version === a) return;
    const focused = (document.activeElement as HTMLElement | null)?.closest<HTMLElement>("[data-name]")?.dataset.name ?? null;
    this.shown = { uid: a.uid, version: a };
    this.el.dataset.uid = a.uid;
    this.title.replaceChildren(`Attributes · ${ed.objectName(a.uid)}`);
    const specs = ed.schemaOf(a.label);
    const disabled = ed.readOnly() || ed.isLocked(a.uid);
    const rows: Node[] = specs.map((spec) => this.field(a.uid, spec, a.attributes?.[spec.name], disabled));
    const declared = new Set(specs.map((s) => s.name));
    const others = Object.entries(a.attributes ?? {}).filter(([k]) => !declared.has(k));
    if (!specs.length) rows.push(h("p", { class: "ed-small ed-hint", testid: "attribute-none" }, `${ed.labelName(a.label)} has no attributes. A manager defines them on the Labels page.`));
    if (others.length) {
      rows.push(h("p", { class: "ed-small", testid: "attribute-others", title: "Attributes this label's schema does not declare (from an import, say): kept as they are" }, `Also: ${others.map(([k, v]) => `${k}: ${formatValue(v)}`).join(" · ")}`));
    }
    this.body.replaceChildren(...rows);
    if (focused) this.body.querySelector<HTMLElement>(`[data-name="${CSS.escape(focused)}"] input, [data-name="${CSS.escape(focused)}"] select`)?.focus({ preventScroll: true });
  }

  private field(uid: string, spec: AttrSpec, value: unknown, disabled: boolean): HTMLElement {
    const missing = !!spec.required && isEmpty(value);
    const error = h("span", { class: "ed-small ed-error", testid: "attribute-error" });
    const set = (v: unknown) => {
      const problem = valueProblem(spec, v);
      if (problem) {
        error.textContent = problem;
        return;
      }
      error.textContent = "";
      this.ed.setAttribute(uid, spec.name, v);
    };
    const name = h("span", { class: "ed-attr-name", title: describeSpec(spec) }, spec.name, spec.required ? h("span", { class: "ed-required", title: "Required before submitting" }, "*") : null);
    let control: HTMLElement;
    switch (controlOf(spec)) {
      case "checkbox": {
        const input = h("input", { type: "checkbox", testid: "attribute-input", "aria-label": spec.name, disabled, onchange: (e: Event) => set((e.target as HTMLInputElement).checked) });
        input.checked = value === true;
        control = input;
        break;
      }
      case "select": {
        const select = h(
          "select",
          { testid: "attribute-input", "aria-label": spec.name, disabled, onchange: (e: Event) => {
            const i = (e.target as HTMLSelectElement).selectedIndex - 1;
            set(i < 0 ? null : spec.choices![i]);
          } },
          h("option", { value: "" }, "(not set)"),
          ...spec.choices!.map((c) => h("option", { value: String(c) }, formatValue(c))),
        );
        select.selectedIndex = value == null ? 0 : spec.choices!.indexOf(value as string) + 1;
        control = select;
        break;
      }
      case "multi": {
        const chosen = new Set(Array.isArray(value) ? value : []);
        control = h(
          "div",
          { class: "ed-chips", testid: "attribute-input", role: "group", "aria-label": spec.name },
          ...spec.choices!.map((c) => {
            const box = h("input", { type: "checkbox", disabled, onchange: (e: Event) => {
              const on = (e.target as HTMLInputElement).checked;
              const next = spec.choices!.filter((x) => (x === c ? on : chosen.has(x)));
              set(next);
            } });
            box.checked = chosen.has(c);
            return h("label", { class: "ed-chip", testid: "attribute-choice", "data-value": String(c) }, box, formatValue(c));
          }),
        );
        break;
      }
      default: {
        const number = controlOf(spec) === "number";
        const input = h("input", {
          type: number ? "number" : "text",
          testid: "attribute-input",
          "aria-label": spec.name,
          class: "ed-input",
          disabled,
          placeholder: number && (spec.min != null || spec.max != null) ? `${spec.min ?? ""}–${spec.max ?? ""}` : "",
          min: number ? spec.min : undefined,
          max: number ? spec.max : undefined,
          step: number ? (spec.type === "integer" ? 1 : "any") : undefined,
          maxlength: !number ? spec.max_length : undefined,
          onchange: (e: Event) => {
            const parsed = parseInput(spec, (e.target as HTMLInputElement).value);
            if ("error" in parsed) {
              error.textContent = parsed.error;
              return;
            }
            set(parsed.value);
          },
          onkeydown: (e: Event) => {
            const key = (e as KeyboardEvent).key;
            if (key === "Enter") (e.target as HTMLInputElement).blur();
            else if (key === "Escape") {
              (e.target as HTMLInputElement).value = value == null ? "" : String(value);
              (e.target as HTMLInputElement).blur();
            }
          },
        });
        input.value = value == null ? "" : String(value);
        control = input;
      }
    }
    return h(
      "div",
      { class: `ed-attr${missing ? " ed-missing" : ""}`, testid: "attribute-field", "data-name": spec.name, "data-missing": String(missing), title: describeSpec(spec) },
      name,
      control,
      error,
    );
  }
}
