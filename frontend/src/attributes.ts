/**
 * Per-object attributes against a label's schema (no DOM): which control each attribute gets,
 * defaults for new objects, the server's value rules (annotator/annotations/attributes.py),
 * required attributes still unset, values in words, and the objects-list filter.
 *
 * A label's `attributes_schema` maps names to specs: {"type": "boolean" | "integer" | "number" |
 * "string", "choices"?: [...], "multiple"?: true, "min"?, "max"?, "max_length"?, "default"?,
 * "required"?: true}.
 */

export type AttrType = "boolean" | "integer" | "number" | "string";

export interface AttrSpec {
  name: string;
  type: AttrType;
  choices?: (string | number | boolean)[];
  multiple?: boolean;
  min?: number;
  max?: number;
  max_length?: number;
  default?: unknown;
  required?: boolean;
}

/** The control an attribute is edited with. */
export type AttrControl = "checkbox" | "number" | "text" | "select" | "multi";

const TYPES = new Set<string>(["boolean", "integer", "number", "string"]);

/**
 * The declared attributes of a schema, by name (PostgreSQL's jsonb does not keep the order keys
 * were written in, so alphabetical is the one order every server agrees on); malformed entries
 * are skipped.
 */
export function parseSchema(schema: unknown): AttrSpec[] {
  if (!schema || typeof schema !== "object" || Array.isArray(schema)) return [];
  const specs: AttrSpec[] = [];
  for (const [name, raw] of Object.entries(schema as Record<string, unknown>)) {
    if (!raw || typeof raw !== "object" || !TYPES.has(String((raw as { type?: unknown }).type))) continue;
    specs.push({ ...(raw as Omit<AttrSpec, "name">), name });
  }
  return specs.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

export function controlOf(spec: AttrSpec): AttrControl {
  if (spec.choices?.length) return spec.multiple ? "multi" : "select";
  if (spec.type === "boolean") return "checkbox";
  if (spec.type === "integer" || spec.type === "number") return "number";
  return "text";
}

/** What a new object of this label starts with. */
export function defaultsOf(specs: AttrSpec[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const s of specs) if (s.default !== undefined && s.default !== null) out[s.name] = Array.isArray(s.default) ? [...s.default] : s.default;
  return out;
}

/** The same "no value" as the server: missing, null, "" or []. */
export function isEmpty(v: unknown): boolean {
  return v === undefined || v === null || v === "" || (Array.isArray(v) && v.length === 0);
}

/** Required attributes without a value (names, in schema order). */
export function missingRequired(specs: AttrSpec[], attrs: Record<string, unknown> | null | undefined): string[] {
  return specs.filter((s) => s.required && isEmpty(attrs?.[s.name])).map((s) => s.name);
}

/** Why the server would refuse this value (null: it fits). Mirrors attributes.py's _value_problem. */
export function valueProblem(spec: AttrSpec, value: unknown): string | null {
  if (value === null || value === undefined) return null;
  if (spec.multiple) {
    if (!Array.isArray(value)) return "must be a list of choices";
    if (new Set(value.map((v) => JSON.stringify(v))).size !== value.length) return "lists a choice twice";
    for (const v of value) {
      const p = valueProblem({ ...spec, multiple: false }, v);
      if (p) return `has ${JSON.stringify(v)}, which ${p}`;
    }
    return null;
  }
  switch (spec.type) {
    case "boolean":
      if (typeof value !== "boolean") return "must be true or false";
      break;
    case "integer":
      if (typeof value !== "number" || !Number.isInteger(value)) return "must be a whole number";
      break;
    case "number":
      if (typeof value !== "number" || !Number.isFinite(value)) return "must be a number";
      break;
    default:
      if (typeof value !== "string") return "must be text";
      if (spec.max_length != null && value.length > spec.max_length) return `is longer than ${spec.max_length} characters`;
  }
  if (spec.choices && !spec.choices.includes(value as string)) return `must be one of ${spec.choices.join(", ")}`;
  if (spec.min != null && (value as number) < spec.min) return `must be at least ${spec.min}`;
  if (spec.max != null && (value as number) > spec.max) return `must be at most ${spec.max}`;
  return null;
}

/** A typed-in value ("" clears it): the value to store, or why it does not fit. */
export function parseInput(spec: AttrSpec, text: string): { value: unknown } | { error: string } {
  const t = text.trim();
  if (t === "") return { value: null };
  let value: unknown = text;
  if (spec.type === "integer" || spec.type === "number") {
    const n = Number(t);
    if (!Number.isFinite(n)) return { error: "must be a number" };
    value = n;
  } else if (spec.type === "boolean") {
    value = ["true", "yes", "1"].includes(t.toLowerCase());
  }
  const problem = valueProblem(spec, value);
  return problem ? { error: problem } : { value };
}

/** A value in words: "yes" / "no", lists joined with commas, "–" for none. */
export function formatValue(value: unknown): string {
  if (isEmpty(value)) return "–";
  if (typeof value === "boolean") return value ? "yes" : "no";
  if (Array.isArray(value)) return value.map((v) => formatValue(v)).join(", ");
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

/** "Range 0–10", "one of: a, b", "several of: …", "yes / no": the spec in words (tooltips). */
export function describeSpec(spec: AttrSpec): string {
  const parts: string[] = [];
  const control = controlOf(spec);
  if (control === "select") parts.push(`one of: ${spec.choices!.join(", ")}`);
  else if (control === "multi") parts.push(`several of: ${spec.choices!.join(", ")}`);
  else if (control === "checkbox") parts.push("yes / no");
  else if (control === "number") {
    parts.push(spec.type === "integer" ? "whole number" : "number");
    if (spec.min != null || spec.max != null) parts.push(`${spec.min ?? "…"} to ${spec.max ?? "…"}`);
  } else parts.push(spec.max_length != null ? `text, up to ${spec.max_length} characters` : "text");
  if (spec.required) parts.push("required");
  return parts.join(", ");
}

/** The objects-list filter: attribute `name` has `value` ("*": has any value, "-": has none). */
export interface AttributeFilter {
  name: string;
  value: string;
}

export const ANY_VALUE = "*";
export const NO_VALUE = "-";

export function matchesFilter(attrs: Record<string, unknown> | null | undefined, f: AttributeFilter | null): boolean {
  if (!f || !f.name) return true;
  const v = attrs?.[f.name];
  if (f.value === ANY_VALUE) return !isEmpty(v) && v !== false;
  if (f.value === NO_VALUE) return isEmpty(v) || v === false;
  const want = f.value.trim().toLowerCase();
  if (Array.isArray(v)) return v.some((x) => formatValue(x).toLowerCase() === want);
  if (typeof v === "boolean") return (v ? ["yes", "true", "1"] : ["no", "false", "0"]).includes(want);
  return formatValue(v).toLowerCase() === want;
}

/** Every attribute name declared by any label (for the filter's list), with the values it can take. */
export function filterOptions(schemas: unknown[]): { name: string; values: string[] }[] {
  const byName = new Map<string, Set<string>>();
  for (const schema of schemas) {
    for (const spec of parseSchema(schema)) {
      const values = byName.get(spec.name) ?? new Set<string>();
      if (spec.choices) for (const c of spec.choices) values.add(formatValue(c));
      if (spec.type === "boolean") ["yes", "no"].forEach((x) => values.add(x));
      byName.set(spec.name, values);
    }
  }
  return [...byName].map(([name, values]) => ({ name, values: [...values] })).sort((a, b) => a.name.localeCompare(b.name));
}
