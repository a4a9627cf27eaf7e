/** Command stack tests: every command applies, undoes and redoes, and notifies listeners. */
import { describe, expect, it } from "vitest";
import { addHole, addPart, deleteVertex, insertVertex, moveVertex, newPolygons, normalizeGeometry, type PolygonsGeometry, type Ring } from "../src/geometry";
import {
  AddAnnotation,
  AnnotationStore,
  Batch,
  DismissProposal,
  RemoveAnnotation,
  UpdateAnnotation,
  normalizeCommand,
  replaceSet,
  setGeometry,
  setLabel,
  toPayload,
  zOrderStep,
  type Annotation,
  type ChangeEvent,
} from "../src/store";

const square = (x: number, y: number, s: number): Ring => [[x, y], [x + s, y], [x + s, y + s], [x, y + s]];

function ann(uid: string, z = 0, ring = square(0, 0, 10)): Annotation {
  return { uid, label: 1, geometry: newPolygons(ring), z_order: z, source: "manual", score: null, model_version: null, prediction: null, attributes: {} };
}

function roundTrip(store: AnnotationStore, check: (phase: "done" | "undone") => void) {
  check("done");
  expect(store.undo()).not.toBeNull();
  check("undone");
  expect(store.redo()).not.toBeNull();
  check("done");
}

describe("AnnotationStore commands", () => {
  it("add / undo / redo", () => {
    const s = new AnnotationStore();
    s.execute(new AddAnnotation(ann("a")));
    roundTrip(s, (p) => expect(s.has("a")).toBe(p === "done"));
  });

  it("delete / undo / redo", () => {
    const s = new AnnotationStore([ann("a")]);
    s.execute(new RemoveAnnotation(s.get("a")!));
    roundTrip(s, (p) => expect(s.has("a")).toBe(p === "undone"));
  });

  const geomEdits: [string, (g: PolygonsGeometry) => PolygonsGeometry][] = [
    ["move vertex", (g) => moveVertex(g, { part: 0, ring: 0, index: 0 }, [-5, -5])],
    ["insert vertex", (g) => insertVertex(g, { part: 0, ring: 0, index: 0 }, [5, -1])],
    ["delete vertex", (g) => deleteVertex(insertVertex(g, { part: 0, ring: 0, index: 0 }, [5, -1]), { part: 0, ring: 0, index: 0 })!],
    ["cut hole", (g) => addHole(g, square(2, 2, 2))!],
    ["add part", (g) => addPart(g, square(30, 30, 5))],
  ];
  for (const [name, edit] of geomEdits) {
    it(`${name} / undo / redo`, () => {
      const s = new AnnotationStore([ann("a")]);
      const before = s.get("a")!;
      const after = edit(before.geometry as PolygonsGeometry);
      s.execute(setGeometry(before, after, name));
      roundTrip(s, (p) => expect(s.get("a")!.geometry).toEqual(p === "done" ? after : before.geometry));
    });
  }

  it("change label / undo / redo", () => {
    const s = new AnnotationStore([ann("a")]);
    s.execute(setLabel(s.get("a")!, 7));
    roundTrip(s, (p) => expect(s.get("a")!.label).toBe(p === "done" ? 7 : 1));
  });

  it("z-order step swaps with the overlapping neighbour and undoes", () => {
    const s = new AnnotationStore([ann("a", 1), ann("b", 2), ann("far", 3, square(100, 100, 5))]);
    const overlap = (x: Annotation, y: Annotation) => x.uid !== "far" && y.uid !== "far";
    s.execute(zOrderStep(s, "a", 1, overlap)!);
    roundTrip(s, (p) => {
      expect(s.get("a")!.z_order > s.get("b")!.z_order).toBe(p === "done");
    });
    expect(zOrderStep(s, "a", 1, overlap)).toBeNull(); // already above everything it overlaps
  });

  it("dismiss proposal / undo / redo", () => {
    const s = new AnnotationStore();
    s.execute(new DismissProposal(42));
    roundTrip(s, (p) => expect(s.isDismissed(42)).toBe(p === "done"));
  });

  it("batch (accept all) is one undo step", () => {
    const s = new AnnotationStore();
    s.execute(new Batch("accept all", [new AddAnnotation({ ...ann("a"), prediction: 5 }), new AddAnnotation({ ...ann("b"), prediction: 6 })]));
    expect([...s.acceptedPredictionIds()].sort()).toEqual([5, 6]);
    roundTrip(s, (p) => expect(s.size).toBe(p === "done" ? 2 : 0));
  });

  it("a new command clears the redo stack, revision counts every change, listeners see uids", () => {
    const s = new AnnotationStore();
    const events: ChangeEvent[] = [];
    s.subscribe((e) => events.push(e));
    s.execute(new AddAnnotation(ann("a")));
    s.undo();
    s.execute(new AddAnnotation(ann("b")));
    expect(s.canRedo()).toBe(false);
    expect(s.revision).toBe(3);
    expect(events.map((e) => [e.cause, [...e.uids]])).toEqual([["do", ["a"]], ["undo", ["a"]], ["do", ["b"]]]);
  });

  it("load replaces everything and clears history", () => {
    const s = new AnnotationStore([ann("a")]);
    s.execute(new AddAnnotation(ann("b")));
    s.load([ann("c")]);
    expect(s.all().map((a) => a.uid)).toEqual(["c"]);
    expect(s.canUndo()).toBe(false);
  });

  it("payload drops read-only fields", () => {
    const p = toPayload({ ...ann("a"), bbox: [0, 0, 1, 1], area: 1, author: "x", updated_at: "t" });
    expect(Object.keys(p)).not.toContain("bbox");
    expect(Object.keys(p)).not.toContain("updated_at");
  });
});

describe("normalizeCommand (every tool's output, before it becomes an object)", () => {
  const fix = (g: Parameters<typeof normalizeGeometry>[0]) => normalizeGeometry(g, 100, 100);

  it("passes a command whose geometries are fine through unchanged", () => {
    const cmd = new AddAnnotation(ann("a"));
    expect(normalizeCommand(cmd, fix)).toBe(cmd);
    const relabel = setLabel(ann("a"), 2);
    expect(normalizeCommand(relabel, fix)).toBe(relabel);
  });

  it("clamps a new object's vertex in the margin onto the edge", () => {
    const cmd = normalizeCommand(new AddAnnotation(ann("a", 0, [[50, 50], [90, 50], [70, 104]])), fix) as AddAnnotation;
    expect((cmd.annotation.geometry as PolygonsGeometry).polygons[0].exterior[2]).toEqual([70, 100]);
  });

  it("turns an edit that leaves nothing inside the image into a delete, and drops such an add", () => {
    const before = ann("a");
    const off = setGeometry(before, newPolygons(square(200, 200, 10)));
    const cmd = normalizeCommand(off, fix);
    expect(cmd).toBeInstanceOf(RemoveAnnotation);
    expect(normalizeCommand(new AddAnnotation(ann("b", 0, square(200, 200, 10))), fix)).toBeNull();
  });

  it("fixes each command of a batch and keeps the batch's name", () => {
    const batch = new Batch("accept 2 proposals", [new AddAnnotation(ann("a")), new AddAnnotation(ann("b", 1, [[0, 0], [120, 0], [0, 50]]))]);
    const out = normalizeCommand(batch, fix) as Batch;
    expect(out.name).toBe("accept 2 proposals");
    expect(out.commands[0]).toBe(batch.commands[0]);
    expect(((out.commands[1] as AddAnnotation).annotation.geometry as PolygonsGeometry).polygons[0].exterior[1]).toEqual([100, 0]);
  });
});

describe("replaceSet (restoring journaled edits)", () => {
  it("adds, changes and removes as one undoable step", () => {
    const s = new AnnotationStore([ann("keep"), ann("edit"), ann("gone")]);
    const edited = { ...ann("edit"), label: 2 };
    const cmd = replaceSet(s, [ann("keep"), edited, ann("new")], "restore unsaved edits")!;
    s.execute(cmd);
    expect(s.all().map((a) => a.uid).sort()).toEqual(["edit", "keep", "new"]);
    expect(s.get("edit")!.label).toBe(2);
    s.undo();
    expect(s.all().map((a) => a.uid).sort()).toEqual(["edit", "gone", "keep"]);
    expect(s.get("edit")!.label).toBe(1);
  });

  it("is null when the set is the same (whatever the key order)", () => {
    const a = ann("a");
    const s = new AnnotationStore([a]);
    const reordered = JSON.parse(JSON.stringify({ geometry: a.geometry, uid: a.uid, attributes: {}, label: 1, z_order: 0, source: "manual", score: null, model_version: null, prediction: null }));
    expect(replaceSet(s, [reordered], "restore")).toBeNull();
  });
});

describe("AnnotationStore.patch (a geometry the server repaired)", () => {
  it("replaces the geometry in place without an undo step or a new revision", () => {
    const a = ann("a");
    const s = new AnnotationStore([a]);
    const events: ChangeEvent[] = [];
    s.subscribe((e) => events.push(e));
    const revision = s.revision;
    const repaired = newPolygons(square(1, 1, 8));
    expect(s.patch("a", a, repaired)).toBe(true);
    expect(s.get("a")!.geometry).toBe(repaired);
    expect(s.revision).toBe(revision);
    expect(s.canUndo()).toBe(false);
    expect(events.map((e) => e.cause)).toEqual(["repair"]);
  });

  it("does nothing when the object was edited or deleted since it was sent", () => {
    const a = ann("a");
    const s = new AnnotationStore([a]);
    s.execute(new UpdateAnnotation("edit", a, { ...a, label: 2 }));
    expect(s.patch("a", a, newPolygons(square(1, 1, 8)))).toBe(false);
    expect(s.get("a")!.label).toBe(2);
    expect(s.patch("missing", a, newPolygons(square(1, 1, 8)))).toBe(false);
  });
});
