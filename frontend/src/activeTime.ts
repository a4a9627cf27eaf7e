/**
 * Active annotation time: a counter of the time someone actually works on an image, the tracker
 * that reports it to the server (POST /api/images/<id>/time/), and the break reminder.
 *
 * Time counts only while the tab is visible and there was input (pointer, key, wheel) in the last
 * minute: a stretch without input stops counting one minute after the last input, and a hidden
 * tab counts nothing. Coming back to the tab counts as input. The tracker reports what it counted
 * about once a minute and whenever the tab is hidden or the page goes (with navigator.sendBeacon,
 * which outlives the page). The server puts the reports together into work sessions (pauses under
 * 30 minutes) and answers how long the current one has lasted; past the project's
 * break_reminder_minutes the editor shows a banner that never blocks work.
 */

import { timeApi } from "./api";

/** No input for this long: counting stops (the minute itself still counts). */
export const IDLE_MS = 60_000;
/** How often the tracker reports while someone works. */
export const REPORT_EVERY_MS = 60_000;
/** The server refuses a report of more than an hour; what is left goes in the next one. */
const MAX_REPORT_SECONDS = 3600;
/** Less than this is not sent when the page goes (it stays for the next report if the page comes back). */
const MIN_BEACON_SECONDS = 0.5;

/**
 * Counts active milliseconds. Pure: the clock is injected and nothing is scheduled; accounting is
 * brought up to date on every call, so no timer has to run for the count to be right.
 */
export class ActiveTimeCounter {
  readonly idleMs: number;
  private visible: boolean;
  private lastInput: number | null = null;
  /** Time up to which the count is done. */
  private countedTo: number;
  private total = 0;
  private taken = 0;

  constructor(
    private readonly now: () => number = () => Date.now(),
    opts: { visible?: boolean; idleMs?: number } = {},
  ) {
    this.visible = opts.visible ?? true;
    this.idleMs = opts.idleMs ?? IDLE_MS;
    this.countedTo = now();
  }

  /** Some input happened now. */
  input(): void {
    const t = this.now();
    this.settle(t);
    if (this.visible) this.lastInput = t;
  }

  /** The tab was shown or hidden; being shown counts as input. */
  setVisible(visible: boolean): void {
    this.settle(this.now());
    this.visible = visible;
    if (visible) this.lastInput = this.now();
  }

  /** Active milliseconds counted since the start. */
  activeMs(): number {
    this.settle(this.now());
    return this.total;
  }

  /** The active milliseconds counted since the last take (they are not returned again). */
  take(): number {
    const ms = this.activeMs() - this.taken;
    this.taken += ms;
    return ms;
  }

  private settle(t: number): void {
    if (this.visible && this.lastInput !== null) {
      const end = Math.min(t, this.lastInput + this.idleMs);
      if (end > this.countedTo) this.total += end - this.countedTo;
    }
    this.countedTo = Math.max(this.countedTo, t);
  }
}

/** The server's answer to a report (and to the question asked when the editor opens). */
export interface TimeReport {
  /** The person's active seconds on this image so far. */
  seconds: number;
  session: { started_at: string; minutes: number; active_seconds: number } | null;
  break_reminder_minutes: number;
}

/** How the tracker talks to the server (api.ts in the editor, a script in tests). */
export interface TimeTransport {
  /** The session as it stands, asked once when the editor opens (a reminder due shows at once). */
  state(): Promise<TimeReport>;
  report(seconds: number): Promise<TimeReport>;
  /** Fire and forget, for a page that is going away; false when the browser would not queue it. */
  beacon(seconds: number): boolean;
}

/** What the tracker listens to: the window's input events and the document's visibility. */
export interface TimeEnvironment {
  window: Pick<EventTarget, "addEventListener">;
  document: Pick<EventTarget, "addEventListener"> & { visibilityState: string };
}

const INPUT_EVENTS = ["pointerdown", "pointermove", "keydown", "wheel"] as const;

/**
 * Reports the active time of one open image. Seconds that could not be sent (offline, server
 * down) are kept and go with the next report. `onReport` gets every answer (the break reminder).
 */
export class ActiveTimeTracker {
  readonly counter: ActiveTimeCounter;
  /** Counted but not yet accepted by the server, in seconds. */
  private unsent = 0;
  private sending: Promise<void> | null = null;
  private timer: ReturnType<typeof setInterval>;

  constructor(
    private readonly transport: TimeTransport,
    env: TimeEnvironment,
    private readonly onReport: (report: TimeReport) => void,
    opts: { signal?: AbortSignal; now?: () => number; reportEveryMs?: number; idleMs?: number } = {},
  ) {
    const signal = opts.signal;
    this.counter = new ActiveTimeCounter(opts.now, { visible: env.document.visibilityState === "visible", idleMs: opts.idleMs });
    // Opening the image is the first input.
    this.counter.input();
    const input = () => this.counter.input();
    for (const name of INPUT_EVENTS) env.window.addEventListener(name, input, { passive: true, capture: true, signal });
    env.document.addEventListener("visibilitychange", () => {
      const visible = env.document.visibilityState === "visible";
      this.counter.setVisible(visible);
      // Hidden may be the last thing a page sees (mobile browsers do not always fire pagehide).
      if (!visible) this.leave();
    }, { signal });
    env.window.addEventListener("pagehide", () => {
      // Gone (or into the back-forward cache, whose return brings a visibilitychange): nothing
      // more counts, so the visibilitychange that may follow has nothing left to send.
      this.counter.setVisible(false);
      this.leave();
    }, { signal });
    this.timer = setInterval(() => void this.flush(), opts.reportEveryMs ?? REPORT_EVERY_MS);
    // Without an answer the first report, a minute on, brings the session.
    transport.state().then((report) => !signal?.aborted && onReport(report), () => undefined);
    signal?.addEventListener("abort", () => {
      clearInterval(this.timer);
      this.leave();
    });
  }

  /** Seconds counted and not yet on the server. */
  pendingSeconds(): number {
    this.collect();
    return this.unsent;
  }

  /** Send what was counted (about once a minute; before the page goes use leave). */
  async flush(): Promise<void> {
    if (this.sending) return this.sending;
    this.collect();
    const seconds = Math.min(this.unsent, MAX_REPORT_SECONDS);
    // Under a second is not worth a request: it waits for the next report.
    if (seconds < 1) return;
    this.unsent -= seconds;
    this.sending = this.transport
      .report(seconds)
      .then(
        (report) => this.onReport(report),
        () => {
          this.unsent += seconds;
        },
      )
      .finally(() => {
        this.sending = null;
      });
    return this.sending;
  }

  /** The page is hidden or going: hand what is left to the browser to deliver. */
  leave(): void {
    this.collect();
    const seconds = Math.min(this.unsent, MAX_REPORT_SECONDS);
    // A few milliseconds (hidden right after a report) are not worth a request the server refuses.
    if (seconds < MIN_BEACON_SECONDS) return;
    if (this.transport.beacon(seconds)) this.unsent -= seconds;
  }

  private collect(): void {
    this.unsent += this.counter.take() / 1000;
  }
}

/**
 * Which reminder is due: every break_reminder_minutes of a session is one more (1 after 90
 * minutes, 2 after 180, ...); 0 when none is or the reminder is off. One dismissed stays
 * dismissed until the next one.
 */
export function breakDue(sessionMinutes: number, reminderMinutes: number, dismissed: number): number {
  if (!(reminderMinutes > 0)) return 0;
  const level = Math.floor(sessionMinutes / reminderMinutes);
  return level > dismissed ? level : 0;
}

/** "1 h 32 min", "45 min". */
export function formatMinutes(minutes: number): string {
  const m = Math.floor(minutes);
  const hours = Math.floor(m / 60);
  return hours ? `${hours} h ${m % 60} min` : `${m} min`;
}

// ------------------------------------------------------------ in the editor

/** What the tracker needs of the editor. */
export interface TimeHost {
  image: { id: number };
  project: { break_reminder_minutes?: number };
  root: HTMLElement;
  signal: AbortSignal;
  emit(name: string, detail: Record<string, unknown>): void;
}

/**
 * Start tracking the open image's active time; the break banner goes under the toolbar. Every
 * answer is also emitted as "editor:time-reported" (detail: the report's fields).
 */
export function trackActiveTime(host: TimeHost, transport?: TimeTransport): ActiveTimeTracker {
  const id = host.image.id;
  const reminder = new BreakReminder(host);
  return new ActiveTimeTracker(
    transport ?? { state: () => timeApi.state(id), report: (s) => timeApi.report(id, s), beacon: (s) => timeApi.beacon(id, s) },
    { window, document },
    (report) => {
      reminder.update(report);
      host.emit("editor:time-reported", { ...report });
    },
    { signal: host.signal },
  );
}

/** The break banner: shown when a reminder is due, dismissed until the next one (per tab). */
class BreakReminder {
  private el: HTMLElement | null = null;

  constructor(private readonly host: TimeHost) {}

  update(report: TimeReport): void {
    const session = report.session;
    if (!session) return this.hide();
    const key = `annotator.break-dismissed.${session.started_at}`;
    const due = breakDue(session.minutes, report.break_reminder_minutes, Number(storage()?.getItem(key) ?? 0));
    if (!due) return this.hide();
    const el = this.el ?? this.build();
    el.querySelector("[data-testid=break-text]")!.textContent =
      `You have been annotating for ${formatMinutes(session.minutes)} with no long pause. A short break keeps outlines accurate.`;
    el.querySelector<HTMLButtonElement>("button")!.onclick = () => {
      storage()?.setItem(key, String(due));
      this.hide();
    };
    el.hidden = false;
  }

  private build(): HTMLElement {
    const el = document.createElement("div");
    el.className = "ed-banner ed-break-banner";
    el.dataset.testid = "break-banner";
    el.setAttribute("role", "status");
    const text = document.createElement("span");
    text.dataset.testid = "break-text";
    const dismiss = document.createElement("button");
    dismiss.type = "button";
    dismiss.dataset.testid = "break-dismiss";
    dismiss.textContent = "Dismiss";
    el.append(text, dismiss);
    const top = this.host.root.querySelector(".ed-top");
    if (top) top.append(el);
    else this.host.root.prepend(el);
    this.el = el;
    return el;
  }

  private hide(): void {
    if (this.el) this.el.hidden = true;
  }
}

function storage(): Storage | null {
  try {
    return window.sessionStorage;
  } catch {
    return null; // storage disabled: a dismissed reminder comes back on the next image
  }
}
