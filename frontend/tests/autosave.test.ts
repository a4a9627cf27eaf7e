/**
 * Autosave against a scripted server: repairs are taken over in place, an object the server
 * refuses is held back while everything else saves, and a held-back object goes again once edited.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { Autosaver, type HeldBack, type SaveState } from "../src/autosave";
import { newPolygons, type Ring } from "../src/geometry";
import { AddAnnotation, AnnotationStore, RemoveAnnotation, setGeometry, setLabel, type Annotation } from "../src/store";

const square = (x: number, y: number, s: number): Ring => [[x, y], [x + s, y], [x + s, y + s], [x, y + s]];

function ann(uid: string, x = 0): Annotation {
  return { uid, label: 1, geometry: newPolygons(square(x, 0, 10)), z_order: 0, source: "manual", score: null, model_version: null, prediction: null, attributes: {} };
}

/** A save as sent: a PUT has `annotations` (the whole set), a PATCH `changed`, `removed` and `order`. */
interface Sent {
  method: string;
  version: number;
  annotations?: Annotation[];
  changed?: Annotation[];
  removed?: string[];
  order?: string[];
}

/** The server: `answer` decides each save's status and body; every save is kept in `sent`. */
function server(answer: (body: Sent, n: number) => [number, Record<string, unknown>]) {
  const sent: Sent[] = [];
  vi.stubGlobal("fetch", async (_url: string, init: RequestInit) => {
    const body = { method: String(init.method), ...JSON.parse(String(init.body)) } as Sent;
    sent.push(body);
    const [status, json] = answer(body, sent.length);
    return new Response(JSON.stringify(json), { status, headers: { "Content-Type": "application/json" } });
  });
  return sent;
}

const refuse = (index: number, uid: string, reason: string): [number, Record<string, unknown>] => [
  400,
  { detail: `annotation ${index} (${uid}): ${reason} (part 0)`, object: { index, uid, reason } },
];

function saver(store: AnnotationStore, version = 1) {
  const states: [SaveState, string][] = [];
  const held: HeldBack[][] = [];
  const repaired: string[][] = [];
  const a = new Autosaver(7, version, store, {
    onState: (s, r) => states.push([s, r]),
    onConflict: () => {},
    onSaved: () => {},
    onRepaired: (rs) => repaired.push(rs.map((r) => r.uid)),
    onHeld: (h) => held.push(h),
  });
  return { autosave: a, states, held, repaired };
}

/** The uids of the whole set a save leaves on the server. */
const uids = (s: Sent) => s.order ?? s.annotations!.map((a) => a.uid);
const changedUids = (s: Sent) => (s.changed ?? s.annotations!).map((a) => a.uid);

beforeEach(() => {
  vi.useFakeTimers();
  vi.stubGlobal("document", { cookie: "" });
});
afterEach(() => {
  vi.useRealTimers();
  vi.unstubAllGlobals();
});

describe("an object the server refuses", () => {
  it("is held back and the rest is sent again at once and saved", async () => {
    const store = new AnnotationStore([ann("old")]);
    const { autosave, held } = saver(store);
    const sent = server((body, n) => (n === 1 ? refuse(2, "bad", "it lies entirely outside the image") : [200, { image: 7, version: body.version + 1, repaired: [] }]));
    store.execute(new AddAnnotation(ann("good", 20)));
    store.execute(new AddAnnotation(ann("bad", 40)));

    expect(await autosave.saveNow()).toBe(false);

    expect(sent.map(uids)).toEqual([["old", "good", "bad"], ["old", "good"]]);
    expect(autosave.version).toBe(2);
    expect(autosave.dirty).toBe(false);
    expect(autosave.state).toBe("held");
    expect(autosave.heldReason("bad")).toBe("it lies entirely outside the image");
    expect(held.at(-1)!.map((h) => h.uid)).toEqual(["bad"]);
    // The refused object is still there, locally.
    expect(store.has("bad")).toBe(true);
  });

  it("that the server already has stays as the server has it", async () => {
    const before = ann("kept");
    const store = new AnnotationStore([before, ann("other", 20)]);
    const { autosave } = saver(store);
    const sent = server((_body, n) => (n === 1 ? refuse(0, "kept", "its outline could not be repaired") : [200, { image: 7, version: 2 }]));
    store.execute(setGeometry(before, newPolygons(square(50, 50, 5))));

    await autosave.saveNow();

    // Neither changed nor removed: the server keeps its copy.
    expect([changedUids(sent[1]), sent[1].removed, uids(sent[1])]).toEqual([[], [], ["kept", "other"]]);
    expect(autosave.heldReason("kept")).not.toBeNull();
  });

  it("that the server already has goes as the server's copy when the whole set is sent", async () => {
    const before = ann("kept");
    const store = new AnnotationStore([before, ann("other", 20)]);
    const { autosave } = saver(store);
    const sent = server((body, n) =>
      n === 1 ? [409, { detail: "conflict", current_version: 5, updated_by: "ann", updated_at: "" }]
        : n === 2 ? refuse(0, "kept", "its outline could not be repaired") : [200, { image: 7, version: body.version + 1 }],
    );
    store.execute(setGeometry(before, newPolygons(square(50, 50, 5))));
    await autosave.saveNow();
    expect(autosave.state).toBe("conflict");

    await autosave.overwrite(); // "keep mine": based on their version, so the whole set goes

    expect(sent.map((s) => [s.method, s.version])).toEqual([["PATCH", 1], ["PUT", 5], ["PUT", 5]]);
    expect(sent[2].annotations![0].geometry).toEqual(before.geometry);
    expect(autosave.heldReason("kept")).not.toBeNull();
  });

  it("goes again once it is edited, and stops being held back when accepted", async () => {
    const store = new AnnotationStore();
    const { autosave, held } = saver(store, 0);
    let refusing = true;
    const sent = server((body) => (refusing && uids(body).includes("bad") ? refuse(1, "bad", "it is broken") : [200, { image: 7, version: body.version + 1 }]));
    store.execute(new AddAnnotation(ann("good")));
    store.execute(new AddAnnotation(ann("bad", 40)));
    await autosave.saveNow();
    expect(autosave.state).toBe("held");

    // Another edit elsewhere: the held-back object is still left out.
    store.execute(setLabel(store.get("good")!, 2));
    await autosave.saveNow();
    expect(uids(sent.at(-1)!)).toEqual(["good"]);

    refusing = false;
    store.execute(setGeometry(store.get("bad")!, newPolygons(square(40, 40, 20))));
    expect(await autosave.saveNow()).toBe(true);

    expect(uids(sent.at(-1)!)).toEqual(["good", "bad"]);
    expect(autosave.heldReason("bad")).toBeNull();
    expect(autosave.state).toBe("saved");
    expect(held.at(-1)).toEqual([]);
  });

  it("that is deleted is no longer held back", async () => {
    const store = new AnnotationStore();
    const { autosave } = saver(store, 0);
    server((body) => (uids(body).includes("bad") ? refuse(0, "bad", "it is broken") : [200, { image: 7, version: body.version + 1 }]));
    store.execute(new AddAnnotation(ann("bad")));
    await autosave.saveNow();
    store.undo();
    expect(await autosave.saveNow()).toBe(true);
    expect(autosave.heldBack()).toEqual([]);
    expect(autosave.state).toBe("saved");
  });

  it("a 400 naming no object keeps today's behaviour: shown, and the next edit saves", async () => {
    const store = new AnnotationStore();
    const { autosave } = saver(store, 0);
    let n = 0;
    const sent = server((body) => (++n === 1 ? [400, { detail: "annotation 0 (3eed77ff-0000-4000-8000-000000000000): point (470.0, 484.0) of part 0 is outside the 640x480 image" }] : [200, { image: 7, version: body.version + 1 }]));
    store.execute(new AddAnnotation(ann("a")));
    await autosave.saveNow();
    expect(autosave.state).toBe("error");
    expect(autosave.reason).toBe("point (470.0, 484.0) is outside the 640x480 image");
    expect(await autosave.saveNow()).toBe(false); // the same data is not sent again
    expect(sent).toHaveLength(1);

    store.execute(new AddAnnotation(ann("b", 20)));
    expect(await autosave.saveNow()).toBe(true);
  });
});

describe("what a save sends", () => {
  it("is what changed since the last save: the objects edited or added, the uids deleted, the order", async () => {
    const [a, b, c] = [ann("a"), ann("b", 20), ann("c", 40)];
    const store = new AnnotationStore([a, b, c]);
    const { autosave } = saver(store, 3);
    const sent = server((body) => [200, { image: 7, version: body.version + 1 }]);
    store.execute(setGeometry(b, newPolygons(square(22, 2, 10))));
    store.execute(new AddAnnotation(ann("d", 60)));
    store.execute(new RemoveAnnotation(c));

    expect(await autosave.saveNow()).toBe(true);
    store.execute(setLabel(store.get("a")!, 2));
    expect(await autosave.saveNow()).toBe(true);

    expect(sent.map((s) => [s.method, s.version, changedUids(s), s.removed, uids(s)])).toEqual([
      ["PATCH", 3, ["b", "d"], ["c"], ["a", "b", "d"]],
      ["PATCH", 4, ["a"], [], ["a", "b", "d"]],
    ]);
    expect(sent[0].changed![0].geometry).toEqual(newPolygons(square(22, 2, 10)));
  });

  it("goes whole (PUT) when the server finds the patch does not fit its set", async () => {
    const store = new AnnotationStore([ann("a"), ann("b", 20)]);
    const { autosave } = saver(store, 1);
    const sent = server((body) =>
      body.method === "PATCH" ? [400, { detail: "order leaves out object b: list it, or remove it", code: "patch_mismatch" }] : [200, { image: 7, version: 2 }],
    );
    store.execute(setLabel(store.get("a")!, 2));

    expect(await autosave.saveNow()).toBe(true);

    expect(sent.map((s) => [s.method, uids(s)])).toEqual([["PATCH", ["a", "b"]], ["PUT", ["a", "b"]]]);
    expect(autosave.state).toBe("saved");
  });

  it("leaves out an object the server repaired (it has the repaired one) and sends an undone edit (it has the edit)", async () => {
    const store = new AnnotationStore([ann("a"), ann("b", 20)]);
    const { autosave } = saver(store, 1);
    const fixed = newPolygons(square(0, 0, 8));
    const sent = server((body, n) => [200, { image: 7, version: body.version + 1, repaired: n === 1 ? [{ uid: "a", index: 0, changes: ["clipped"], message: "Cut.", geometry: fixed }] : [] }]);
    store.execute(setGeometry(store.get("a")!, newPolygons(square(0, 0, 9))));
    await autosave.saveNow();
    store.execute(setLabel(store.get("b")!, 2));
    await autosave.saveNow();
    store.undo(); // b as it was before the second save: the server holds the relabelled one
    await autosave.saveNow();

    expect(sent.map(changedUids)).toEqual([["a"], ["b"], ["b"]]);
    expect(sent[2].changed![0].label).toBe(1);
  });
});

describe("repairs", () => {
  it("replace the geometry in place, with no undo step and nothing left to save", async () => {
    const store = new AnnotationStore();
    const { autosave, repaired } = saver(store, 0);
    const fixed = newPolygons(square(0, 0, 8));
    server(() => [200, { image: 7, version: 1, repaired: [{ uid: "a", index: 0, changes: ["untangled"], message: "An outline that crossed itself was untangled.", geometry: fixed }] }]);
    store.execute(new AddAnnotation(ann("a")));
    const undoable = store.canUndo();

    expect(await autosave.saveNow()).toBe(true);

    expect(store.get("a")!.geometry).toEqual(fixed);
    expect(autosave.dirty).toBe(false);
    expect(autosave.state).toBe("saved");
    expect(repaired).toEqual([["a"]]);
    expect(store.canUndo()).toBe(undoable);
  });

  it("skip an object edited while the save was on its way (it goes again with the next save)", async () => {
    const store = new AnnotationStore();
    const { autosave } = saver(store, 0);
    let edit: (() => void) | null = null;
    const mine = newPolygons(square(30, 30, 30));
    server((body) => {
      edit?.();
      return [200, { image: 7, version: body.version + 1, repaired: [{ uid: "a", index: 0, changes: ["clipped"], message: "Cut.", geometry: newPolygons(square(0, 0, 5)) }] }];
    });
    store.execute(new AddAnnotation(ann("a")));
    edit = () => {
      edit = null;
      store.execute(setGeometry(store.get("a")!, mine));
    };
    await autosave.saveNow();
    expect(store.get("a")!.geometry).toBe(mine);
    expect(autosave.dirty).toBe(true);
  });
});
