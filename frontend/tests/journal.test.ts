/** The local journal: written in order, cleared only when the server has the last edit, survives a reopen. */
import { IDBFactory } from "fake-indexeddb";
import { describe, expect, it } from "vitest";
import { newPolygons, type Ring } from "../src/geometry";
import { Journal, JournalRecorder, sameSet, type JournalSnapshot } from "../src/journal";
import { toPayload, type Annotation } from "../src/store";

const square = (x: number, y: number, s: number): Ring => [[x, y], [x + s, y], [x + s, y + s], [x, y + s]];

function ann(uid: string, x = 0): Annotation {
  return { uid, label: 1, geometry: newPolygons(square(x, 0, 10)), z_order: 0, source: "manual", score: null, model_version: null, prediction: null, attributes: {} };
}

const mask = (uid: string): Annotation => ({ ...ann(uid), geometry: { type: "mask", rle: { size: [4, 4], counts: "52203" } } });

/** A recorder over a fresh database and a state the test changes by hand. */
async function setup(factory = new IDBFactory()) {
  const journal = (await Journal.open(factory))!;
  const state: JournalSnapshot = { revision: 0, baseVersion: 3, annotations: [] };
  const recorder = new JournalRecorder(journal, 7, "annotator", () => ({ ...state, annotations: [...state.annotations] }));
  const edit = (items: Annotation[]) => {
    state.revision++;
    state.annotations = items.map(toPayload);
    recorder.note();
  };
  return { factory, journal, recorder, state, edit };
}

describe("Journal", () => {
  it("keeps the set, its base version and when it was written, per image, across a reopen", async () => {
    const { factory, recorder, edit } = await setup();
    edit([ann("a"), mask("m")]);
    await recorder.idle();

    const reopened = (await Journal.open(factory))!;
    const entry = (await reopened.read(7))!;
    expect(entry.baseVersion).toBe(3);
    expect(entry.user).toBe("annotator");
    expect(entry.annotations.map((a) => a.uid)).toEqual(["a", "m"]);
    expect(entry.annotations[1].geometry).toEqual(mask("m").geometry);
    expect(Date.now() - entry.savedAt).toBeLessThan(5000);
    expect(await reopened.read(8)).toBeNull();
  });

  it("writes one entry for the changes of one tick", async () => {
    const { recorder, journal, edit } = await setup();
    let writes = 0;
    const write = journal.write.bind(journal);
    journal.write = (e) => (writes++, write(e));
    edit([ann("a")]);
    edit([ann("a"), ann("b")]);
    await recorder.idle();
    expect(writes).toBe(1);
    expect((await journal.read(7))!.annotations).toHaveLength(2);
  });

  it("flush writes the pending change at once (before a save is sent)", async () => {
    const { recorder, journal, edit } = await setup();
    edit([ann("a")]);
    recorder.flush();
    await recorder.idle();
    expect((await journal.read(7))!.annotations).toHaveLength(1);
  });

  it("is cleared when the server acknowledges the last recorded edit", async () => {
    const { recorder, journal, edit, state } = await setup();
    edit([ann("a")]);
    recorder.flush();
    recorder.acknowledge(state.revision);
    await recorder.idle();
    expect(await journal.read(7)).toBeNull();
  });

  it("is kept when a later edit was made after the acknowledged one", async () => {
    const { recorder, journal, edit, state } = await setup();
    edit([ann("a")]);
    recorder.flush();
    const sent = state.revision;
    edit([ann("a"), ann("b")]);
    recorder.acknowledge(sent); // still scheduled: skipped
    recorder.flush();
    recorder.acknowledge(sent); // recorded later: skipped
    await recorder.idle();
    expect((await journal.read(7))!.annotations).toHaveLength(2);
  });

  it("keeps an edit recorded while an acknowledgement was queued", async () => {
    const { recorder, journal, edit, state } = await setup();
    edit([ann("a")]);
    recorder.flush();
    recorder.acknowledge(state.revision);
    edit([ann("b")]);
    recorder.flush();
    await recorder.idle();
    expect((await journal.read(7))!.annotations.map((a) => a.uid)).toEqual(["b"]);
  });

  it("discard drops the entry whatever was recorded", async () => {
    const { recorder, journal, edit } = await setup();
    edit([ann("a")]);
    recorder.flush();
    recorder.discard();
    await recorder.idle();
    expect(await journal.read(7)).toBeNull();
  });

  it("does nothing without IndexedDB", async () => {
    expect(await Journal.open(undefined)).toBeNull();
    const recorder = new JournalRecorder(null, 1, "x", () => ({ revision: 1, baseVersion: 0, annotations: [] }));
    recorder.note();
    recorder.flush();
    expect(await recorder.read()).toBeNull();
  });
});

describe("sameSet", () => {
  it("compares sets by content, whatever the order of objects and keys", () => {
    const server = [ann("a"), ann("b", 20)];
    const journaled = [toPayload(server[1]), JSON.parse(JSON.stringify({ ...toPayload(server[0]), geometry: { polygons: server[0].geometry.type === "polygons" ? server[0].geometry.polygons : [], type: "polygons" } }))];
    expect(sameSet(journaled, server)).toBe(true);
    expect(sameSet([toPayload(server[0]), toPayload(ann("b", 21))], server)).toBe(false);
    expect(sameSet([toPayload(server[0])], server)).toBe(false);
  });
});
