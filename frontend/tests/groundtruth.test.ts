import { describe, expect, it } from "vitest";
import type { FeedbackConflict } from "../src/api";
import { conflictText } from "../src/groundtruth";

const conflict = (c: Partial<FeedbackConflict>): FeedbackConflict => ({ kind: "missing", attempt: null, iou: 0, truth_label: null, attempt_label: null, ...c });

describe("the immediate feedback's conflicts", () => {
  it("says what each kind got wrong, labels by name", () => {
    expect(conflictText(conflict({ kind: "missing", truth_label: "dog" }))).toBe("Missed: a dog you did not draw");
    expect(conflictText(conflict({ kind: "extra", attempt_label: "cat", attempt: "u1" }))).toBe("Extra: a cat you drew that is not there");
    expect(conflictText(conflict({ kind: "wrong_label", truth_label: "dog", attempt_label: "cat", iou: 0.934 }))).toBe(
      "Wrong label: you labelled a dog as cat (IoU 0.93)",
    );
    expect(conflictText(conflict({ kind: "low_overlap", attempt_label: "cat", iou: 0.61 }))).toBe(
      "Loose outline: your cat overlaps the truth only partly (IoU 0.61)",
    );
  });
});
