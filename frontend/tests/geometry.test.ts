/** Unit tests for the pure geometry module: areas, hit testing with holes, vertex/hole/part edits. */
import { describe, expect, it } from "vitest";
import {
  addHole,
  addPart,
  decimateRing,
  deleteVertex,
  insertVertex,
  moveVertex,
  nearestEdge,
  nearestVertex,
  nextInStack,
  partAt,
  pointInPolygons,
  polygonsArea,
  polygonsBBox,
  ringSelfIntersects,
  stackAt,
  translateGeometry,
  type PolygonsGeometry,
  type Ring,
} from "../src/geometry";
import { GridIndex } from "../src/spatial";

const square = (x: number, y: number, s: number): Ring => [
  [x, y],
  [x + s, y],
  [x + s, y + s],
  [x, y + s],
];
const donut: PolygonsGeometry = { type: "polygons", polygons: [{ exterior: square(0, 0, 10), holes: [square(3, 3, 4)] }] };

describe("area and bbox", () => {
  it("subtracts holes and sums parts", () => {
    expect(polygonsArea(donut)).toBe(100 - 16);
    const two = addPart(donut, square(20, 0, 2));
    expect(polygonsArea(two)).toBe(84 + 4);
    expect(polygonsBBox(two)).toEqual({ minX: 0, minY: 0, maxX: 22, maxY: 10 });
  });
  it("does not depend on ring orientation", () => {
    const ccw: PolygonsGeometry = { type: "polygons", polygons: [{ exterior: square(0, 0, 10).reverse(), holes: [] }] };
    expect(polygonsArea(ccw)).toBe(100);
  });
});

describe("hit testing", () => {
  it("misses inside a hole and hits the ring around it", () => {
    expect(pointInPolygons([5, 5], donut)).toBe(false);
    expect(pointInPolygons([1, 5], donut)).toBe(true);
    expect(pointInPolygons([11, 5], donut)).toBe(false);
  });
  it("finds the part under the point", () => {
    const two = addPart(donut, square(20, 0, 2));
    expect(partAt([21, 1], two)).toBe(1);
    expect(partAt([5, 5], two)).toBe(-1);
  });
  it("picks the nearest vertex and edge within tolerance", () => {
    expect(nearestVertex(donut, [3.2, 2.9], 1)).toEqual({ part: 0, ring: 1, index: 0 });
    expect(nearestVertex(donut, [5, 5], 1)).toBeNull();
    const e = nearestEdge(donut, [5, 0.4], 1);
    expect(e?.ref).toEqual({ part: 0, ring: 0, index: 0 });
    expect(e?.point).toEqual([5, 0]);
  });
  it("orders a stack topmost first and cycles through it", () => {
    const items = [
      { uid: "a", z_order: 1 },
      { uid: "b", z_order: 3 },
      { uid: "c", z_order: 2 },
    ];
    const stack = stackAt(items, () => true).map((i) => i.uid);
    expect(stack).toEqual(["b", "c", "a"]);
    expect(nextInStack(stack, null)).toBe("b");
    expect(nextInStack(stack, "b")).toBe("c");
    expect(nextInStack(stack, "a")).toBe("b");
  });
  it("grid index returns only boxes under the point or in the rect", () => {
    const g = new GridIndex(16);
    g.insert("a", { minX: 0, minY: 0, maxX: 10, maxY: 10 });
    g.insert("b", { minX: 100, minY: 100, maxX: 140, maxY: 120 });
    expect(g.queryPoint([5, 5])).toEqual(["a"]);
    expect(g.queryPoint([130, 110])).toEqual(["b"]);
    expect([...g.queryRect({ minX: 50, minY: 50, maxX: 200, maxY: 200 })]).toEqual(["b"]);
    g.remove("b");
    expect(g.queryPoint([130, 110])).toEqual([]);
  });
});

describe("vertex edits", () => {
  it("moves a vertex without mutating the input", () => {
    const moved = moveVertex(donut, { part: 0, ring: 0, index: 2 }, [12, 12]);
    expect(moved.polygons[0].exterior[2]).toEqual([12, 12]);
    expect(donut.polygons[0].exterior[2]).toEqual([10, 10]);
  });
  it("inserts a vertex on an edge", () => {
    const g = insertVertex(donut, { part: 0, ring: 0, index: 0 }, [5, -2]);
    expect(g.polygons[0].exterior).toEqual([[0, 0], [5, -2], [10, 0], [10, 10], [0, 10]]);
    expect(polygonsArea(g)).toBe(84 + 10);
  });
  it("deletes a vertex, then removes a hole / part that gets too small", () => {
    const five = insertVertex(donut, { part: 0, ring: 0, index: 0 }, [5, -2]);
    expect(deleteVertex(five, { part: 0, ring: 0, index: 1 })).toEqual(donut);
    const noHole = deleteVertex(donut, { part: 0, ring: 1, index: 0 })!;
    const h = deleteVertex(noHole, { part: 0, ring: 1, index: 0 })!;
    expect(h.polygons[0].holes).toHaveLength(0);
    const tri: PolygonsGeometry = { type: "polygons", polygons: [{ exterior: [[0, 0], [1, 0], [0, 1]], holes: [] }] };
    expect(deleteVertex(tri, { part: 0, ring: 0, index: 0 })).toBeNull();
  });
  it("translates all rings", () => {
    expect(translateGeometry(donut, 1, 2).polygons[0].holes[0][0]).toEqual([4, 5]);
  });
});

describe("holes and parts", () => {
  const plain: PolygonsGeometry = { type: "polygons", polygons: [{ exterior: square(0, 0, 10), holes: [] }] };
  it("cuts a hole inside the containing part", () => {
    const g = addHole(plain, square(2, 2, 3))!;
    expect(g.polygons[0].holes).toHaveLength(1);
    expect(polygonsArea(g)).toBe(91);
    expect(pointInPolygons([3, 3], g)).toBe(false);
  });
  it("refuses a hole outside the object, crossing its edge or overlapping another hole", () => {
    expect(addHole(plain, square(20, 20, 3))).toBeNull();
    expect(addHole(plain, square(8, 8, 5))).toBeNull();
    expect(addHole(donut, square(2, 2, 3))).toBeNull();
  });
  it("puts the hole in the right part of a multi-part object", () => {
    const two = addPart(plain, square(20, 0, 10));
    const g = addHole(two, square(22, 2, 2))!;
    expect(g.polygons[0].holes).toHaveLength(0);
    expect(g.polygons[1].holes).toHaveLength(1);
  });
  it("detects self-intersecting rings", () => {
    expect(ringSelfIntersects([[0, 0], [10, 10], [10, 0], [0, 10]])).toBe(true);
    expect(ringSelfIntersects(square(0, 0, 5))).toBe(false);
  });
  it("decimation keeps at least a triangle and drops sub-tolerance vertices", () => {
    const dense: Ring = Array.from({ length: 100 }, (_, i) => [Math.cos(i / 16) * 5, Math.sin(i / 16) * 5] as [number, number]);
    const d = decimateRing(dense, 2);
    expect(d.length).toBeLessThan(30);
    expect(d.length).toBeGreaterThanOrEqual(3);
  });
});
