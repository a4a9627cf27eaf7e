import { describe, expect, it } from "vitest";
import { plural, shortTime, timeAgo } from "../src/format";

describe("times in words", () => {
  const now = new Date(2026, 11, 1, 17, 30);
  it("shows today's times as hours and minutes, other days with the date, never the raw timestamp", () => {
    expect(shortTime(new Date(2026, 11, 1, 17, 22, 36).toISOString(), now)).toBe("17:22");
    expect(shortTime(new Date(2026, 10, 28, 9, 5).toISOString(), now)).toBe("28 Nov 09:05");
    expect(shortTime(new Date(2025, 0, 2, 9, 5).toISOString(), now)).toBe("2 Jan 2025 09:05");
    expect(shortTime("2026-12-01T17:22:36.916608+00:00", now)).not.toContain("T");
    expect(shortTime("", now)).toBe("just now");
    expect(shortTime("garbage", now)).toBe("at an unknown time");
  });
  it("says how long ago", () => {
    expect(timeAgo(new Date(2026, 11, 1, 17, 29, 50).toISOString(), now)).toBe("just now");
    expect(timeAgo(new Date(2026, 11, 1, 17, 25).toISOString(), now)).toBe("5 min ago");
    expect(timeAgo(new Date(2026, 11, 1, 14, 30).toISOString(), now)).toBe("3 h ago");
    expect(plural(1, "object")).toBe("1 object");
    expect(plural(2, "object")).toBe("2 objects");
  });
});
