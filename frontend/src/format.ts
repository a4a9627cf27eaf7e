/** Times and counts in words for the status bar and the panels (no DOM; tests/format.test.ts). */

/** "17:22" today, "1 Dec 17:22" another day; the input is an ISO timestamp from the server. */
export function shortTime(iso: string | null | undefined, now: Date = new Date()): string {
  if (!iso) return "just now";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "at an unknown time";
  const hm = `${String(d.getHours()).padStart(2, "0")}:${String(d.getMinutes()).padStart(2, "0")}`;
  if (d.toDateString() === now.toDateString()) return hm;
  const month = d.toLocaleString("en", { month: "short" });
  return `${d.getDate()} ${month}${d.getFullYear() !== now.getFullYear() ? ` ${d.getFullYear()}` : ""} ${hm}`;
}

/** "just now", "5 min ago", "3 h ago", then shortTime. */
export function timeAgo(iso: string | null | undefined, now: Date = new Date()): string {
  if (!iso) return "just now";
  const d = new Date(iso);
  const s = (now.getTime() - d.getTime()) / 1000;
  if (Number.isNaN(s)) return "at an unknown time";
  if (s < 45) return "just now";
  if (s < 3600) return `${Math.max(1, Math.round(s / 60))} min ago`;
  if (s < 6 * 3600) return `${Math.round(s / 3600)} h ago`;
  return shortTime(iso, now);
}

/** "1 object" / "3 objects". */
export function plural(n: number, word: string, many = `${word}s`): string {
  return `${n} ${n === 1 ? word : many}`;
}
