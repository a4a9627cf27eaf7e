/** Command stack tests: every command applies, undoes and redoes, and notifies listeners. */
import { describe, expect, it } from "vitest";
import { addHole, addPart, deleteVertex, insertVertex, moveVertex, newPolygons, type PolygonsGeometry, type Ring } from "../src/geometry";
import {
  AddAnnotation,
  AnnotationStore,
  Batch,
  DismissProposal,
  RemoveAnnotation,
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
