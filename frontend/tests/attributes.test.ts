import { describe, expect, it } from "vitest";
import { ANY_VALUE, NO_VALUE, controlOf, defaultsOf, describeSpec, filterOptions, formatValue, matchesFilter, missingRequired, parseInput, parseSchema, valueProblem } from "../src/attributes";

const SCHEMA = {
  occluded: { type: "boolean", default: false },
  colour: { type: "string", choices: ["red", "green"], required: true },
  parts: { type: "string", choices: ["wheel", "door"], multiple: true, default: ["wheel"] },
  count: { type: "integer", min: 0, max: 10 },
  note: { type: "string", max_length: 5 },
  broken: { type: "date" },
};

describe("attribute schemas", () => {
  it("keeps the declared attributes in order and picks a control for each", () => {
    const specs = parseSchema(SCHEMA);
    expect(specs.map((s) => s.name)).toEqual(["colour", "count", "note", "occluded", "parts"]);
    expect(specs.map(controlOf)).toEqual(["select", "number", "text", "checkbox", "multi"]);
    expect(parseSchema(null)).toEqual([]);
    expect(parseSchema(["x"])).toEqual([]);
  });

  it("gives new objects the defaults (lists copied) and names the required ones still unset", () => {
    const specs = parseSchema(SCHEMA);
    const d = defaultsOf(specs);
    expect(d).toEqual({ occluded: false, parts: ["wheel"] });
    expect(d.parts).not.toBe(SCHEMA.parts.default);
    expect(missingRequired(specs, d)).toEqual(["colour"]);
    expect(missingRequired(specs, { colour: "" })).toEqual(["colour"]);
    expect(missingRequired(specs, { colour: "red" })).toEqual([]);
  });

  it("checks values as the server does", () => {
    const [colour, count, note, occluded, parts] = parseSchema(SCHEMA);
    expect(valueProblem(occluded, "yes")).toBe("must be true or false");
    expect(valueProblem(colour, "blue")).toBe("must be one of red, green");
    expect(valueProblem(parts, ["wheel", "wing"])).toContain("wing");
    expect(valueProblem(parts, ["door", "door"])).toBe("lists a choice twice");
    expect(valueProblem(count, 11)).toBe("must be at most 10");
    expect(valueProblem(count, 1.5)).toBe("must be a whole number");
    expect(valueProblem(note, "toolong")).toContain("longer than 5");
    expect(valueProblem(count, null)).toBeNull();
  });

  it("reads typed-in values", () => {
    const [, count, note] = parseSchema(SCHEMA);
    expect(parseInput(count, " 7 ")).toEqual({ value: 7 });
    expect(parseInput(count, "")).toEqual({ value: null });
    expect(parseInput(count, "x")).toEqual({ error: "must be a number" });
    expect(parseInput(count, "-1")).toEqual({ error: "must be at least 0" });
    expect(parseInput(note, "ok")).toEqual({ value: "ok" });
  });

  it("says values and specs in words", () => {
    expect([formatValue(true), formatValue(["a", "b"]), formatValue(null), formatValue(3)]).toEqual(["yes", "a, b", "–", "3"]);
    const [colour, count, , occluded] = parseSchema(SCHEMA);
    expect(describeSpec(count)).toBe("whole number, 0 to 10");
    expect(describeSpec(colour)).toBe("one of: red, green, required");
    expect(describeSpec(occluded)).toBe("yes / no");
  });
});

describe("the objects-list filter", () => {
  it("matches values, list members, yes/no, set and unset", () => {
    expect(matchesFilter({ colour: "Red" }, { name: "colour", value: "red" })).toBe(true);
    expect(matchesFilter({ parts: ["wheel", "door"] }, { name: "parts", value: "door" })).toBe(true);
    expect(matchesFilter({ occluded: true }, { name: "occluded", value: "yes" })).toBe(true);
    expect(matchesFilter({ occluded: false }, { name: "occluded", value: "yes" })).toBe(false);
    expect(matchesFilter({ note: "x" }, { name: "note", value: ANY_VALUE })).toBe(true);
    expect(matchesFilter({}, { name: "note", value: NO_VALUE })).toBe(true);
    expect(matchesFilter({ occluded: false }, { name: "occluded", value: NO_VALUE })).toBe(true);
    expect(matchesFilter({ a: 1 }, null)).toBe(true);
  });

  it("offers every declared attribute of every label with its values", () => {
    const opts = filterOptions([SCHEMA, { colour: { type: "string", choices: ["blue"] } }, {}]);
    expect(opts.map((o) => o.name)).toEqual(["colour", "count", "note", "occluded", "parts"]);
    expect(opts[0].values).toEqual(["red", "green", "blue"]);
    expect(opts.find((o) => o.name === "occluded")!.values).toEqual(["yes", "no"]);
  });
});
