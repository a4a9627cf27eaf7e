/**
 * Active time: only visible time with input in the last minute counts, the tracker reports it
 * about once a minute and when the page is hidden or goes, and nothing counted is lost when a
 * report fails. The clock and timers are vitest's fake ones.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ActiveTimeCounter, ActiveTimeTracker, breakDue, formatMinutes, type TimeReport, type TimeTransport } from "../src/activeTime";

const SECOND = 1000;
const MINUTE = 60 * SECOND;

beforeEach(() => {
  vi.useFakeTimers();
  vi.setSystemTime(new Date("2026-03-02T09:00:00Z"));
});

afterEach(() => {
  vi.useRealTimers();
});

/** Input every `step` ms for `ms` ms. */
function work(counter: { input(): void }, ms: number, step = 5 * SECOND): void {
  for (let t = 0; t < ms; t += step) {
    vi.advanceTimersByTime(step);
    counter.input();
  }
}

/** work, letting each report's answer arrive before the next timer (as a real page would). */
async function workAsync(input: () => void, ms: number, step = 5 * SECOND): Promise<void> {
  for (let t = 0; t < ms; t += step) {
    await vi.advanceTimersByTimeAsync(step);
    input();
  }
}

describe("ActiveTimeCounter", () => {
  it("counts time between inputs and stops a minute after the last one", () => {
    const counter = new ActiveTimeCounter();
    counter.input();
    work(counter, 2 * MINUTE);
    expect(counter.activeMs()).toBe(2 * MINUTE);
    // the person stops: the next minute counts, the nine after it do not
    vi.advanceTimersByTime(10 * MINUTE);
    expect(counter.activeMs()).toBe(3 * MINUTE);
    // back at work: counting starts again from the input, not from the last one
    counter.input();
    vi.advanceTimersByTime(30 * SECOND);
    expect(counter.activeMs()).toBe(3 * MINUTE + 30 * SECOND);
  });

  it("counts nothing before the first input", () => {
    const counter = new ActiveTimeCounter();
    vi.advanceTimersByTime(5 * MINUTE);
    expect(counter.activeMs()).toBe(0);
  });

  it("counts nothing while the tab is hidden, and coming back counts as input", () => {
    const counter = new ActiveTimeCounter();
    counter.input();
    vi.advanceTimersByTime(20 * SECOND);
    counter.setVisible(false);
    vi.advanceTimersByTime(5 * MINUTE);
    counter.input(); // a key event that reaches a hidden tab is not work on this image
    vi.advanceTimersByTime(MINUTE);
    expect(counter.activeMs()).toBe(20 * SECOND);
    counter.setVisible(true);
    vi.advanceTimersByTime(10 * SECOND);
    expect(counter.activeMs()).toBe(30 * SECOND);
    // shown but left alone: the idle minute counts, then nothing
    vi.advanceTimersByTime(5 * MINUTE);
    expect(counter.activeMs()).toBe(80 * SECOND);
  });

  it("take returns each counted millisecond once", () => {
    const counter = new ActiveTimeCounter();
    counter.input();
    vi.advanceTimersByTime(40 * SECOND);
    expect(counter.take()).toBe(40 * SECOND);
    expect(counter.take()).toBe(0);
    vi.advanceTimersByTime(10 * SECOND);
    expect(counter.take()).toBe(10 * SECOND);
  });

  it("honours a shorter idle limit", () => {
    const counter = new ActiveTimeCounter(undefined, { idleMs: 10 * SECOND });
    counter.input();
    vi.advanceTimersByTime(MINUTE);
    expect(counter.activeMs()).toBe(10 * SECOND);
  });
});

/** A page: window and document as event targets, and a scripted server. */
function page(answer: (seconds: number) => Promise<TimeReport> = async (seconds) => reportOf(seconds)) {
  const win = new EventTarget();
  const doc = Object.assign(new EventTarget(), { visibilityState: "visible" });
  const reported: number[] = [];
  const beacons: number[] = [];
  const transport: TimeTransport = {
    state: async () => reportOf(0, 95),
    report: (seconds) => {
      reported.push(seconds);
      return answer(seconds);
    },
    beacon: (seconds) => {
      beacons.push(seconds);
      return true;
    },
  };
  const answers: TimeReport[] = [];
  const controller = new AbortController();
  const tracker = new ActiveTimeTracker(transport, { window: win, document: doc }, (r) => answers.push(r), { signal: controller.signal });
  const setVisibility = (state: "visible" | "hidden") => {
    doc.visibilityState = state;
    doc.dispatchEvent(new Event("visibilitychange"));
  };
  const input = () => win.dispatchEvent(new Event("pointermove"));
  return { tracker, win, reported, beacons, answers, controller, setVisibility, input };
}

function reportOf(seconds: number, minutes = 1): TimeReport {
  return { seconds, session: { started_at: "2026-03-02T09:00:00Z", minutes, active_seconds: seconds }, break_reminder_minutes: 90 };
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

describe("ActiveTimeTracker", () => {
  it("reports the active time about once a minute while someone works", async () => {
    const p = page();
    await workAsync(p.input, 3 * MINUTE);
    await vi.advanceTimersByTimeAsync(0);
    expect(p.reported).toEqual([60, 60, 60]);
    expect(p.answers).toHaveLength(1 + 3);
    // idle: one more minute counts, then the reports stop
    await vi.advanceTimersByTimeAsync(5 * MINUTE);
    expect(p.reported).toEqual([60, 60, 60, 60]);
  });

  it("asks for the session as soon as it starts", async () => {
    const p = page();
    await vi.advanceTimersByTimeAsync(0);
    expect(p.answers.map((a) => a.session?.minutes)).toEqual([95]);
    expect(p.reported).toEqual([]);
  });

  it("listens to pointer, key and wheel input on the window", async () => {
    const p = page();
    for (const name of ["pointerdown", "keydown", "wheel"]) {
      await vi.advanceTimersByTimeAsync(50 * SECOND);
      p.win.dispatchEvent(new Event(name));
    }
    await vi.advanceTimersByTimeAsync(30 * SECOND);
    // 150 s of input, then up to 180 s: all of it within a minute of an input
    expect(sum(p.reported)).toBe(180);
  });

  it("sends what is left with a beacon when the tab is hidden, and counts nothing while hidden", async () => {
    const p = page();
    await workAsync(p.input, 90 * SECOND);
    await vi.advanceTimersByTimeAsync(0);
    expect(p.reported).toEqual([60]);
    p.setVisibility("hidden");
    expect(p.beacons).toEqual([30]);
    await vi.advanceTimersByTimeAsync(10 * MINUTE);
    expect(p.reported).toEqual([60]);
    p.setVisibility("visible"); // at 11:30, between two reports
    await vi.advanceTimersByTimeAsync(20 * SECOND);
    p.win.dispatchEvent(new Event("pagehide"));
    expect(p.beacons).toEqual([30, 20]);
    // the browser follows with a hidden visibilitychange: nothing counted since, nothing sent
    await vi.advanceTimersByTimeAsync(50);
    p.setVisibility("hidden");
    expect(p.beacons).toEqual([30, 20]);
  });

  it("keeps the seconds of a failed report for the next one", async () => {
    let fail = true;
    const p = page(async (seconds) => {
      if (fail) throw new Error("offline");
      return reportOf(seconds);
    });
    await workAsync(p.input, MINUTE);
    await vi.advanceTimersByTimeAsync(0);
    expect(p.reported).toEqual([60]);
    expect(p.tracker.pendingSeconds()).toBe(60);
    fail = false;
    await workAsync(p.input, MINUTE);
    await vi.advanceTimersByTimeAsync(0);
    expect(p.reported).toEqual([60, 120]);
    expect(p.tracker.pendingSeconds()).toBe(0);
  });

  it("stops with the editor and hands the rest to a beacon", async () => {
    const p = page();
    await workAsync(p.input, 20 * SECOND);
    p.controller.abort();
    expect(p.beacons).toEqual([20]);
    await workAsync(p.input, 5 * MINUTE);
    await vi.advanceTimersByTimeAsync(0);
    expect(p.reported).toEqual([]);
  });

  it("keeps a fraction of a second for later instead of sending it when the tab is hidden", async () => {
    const p = page();
    await vi.advanceTimersByTimeAsync(300);
    p.setVisibility("hidden");
    expect(p.beacons).toEqual([]);
    expect(p.tracker.pendingSeconds()).toBeCloseTo(0.3);
  });

  it("does not send a report of under a second", async () => {
    const p = page();
    await vi.advanceTimersByTimeAsync(0);
    await p.tracker.flush();
    expect(p.reported).toEqual([]);
  });
});

describe("break reminder", () => {
  it("is due at every multiple of the reminder, once dismissed not before the next", () => {
    expect(breakDue(89, 90, 0)).toBe(0);
    expect(breakDue(90, 90, 0)).toBe(1);
    expect(breakDue(120, 90, 1)).toBe(0);
    expect(breakDue(181, 90, 1)).toBe(2);
    expect(breakDue(500, 0, 0)).toBe(0);
  });

  it("says the time in hours and minutes", () => {
    expect(formatMinutes(45.7)).toBe("45 min");
    expect(formatMinutes(92)).toBe("1 h 32 min");
  });
});
