/** REST client for the editor: same-origin session auth, CSRF header on writes, typed payloads. */
import type { Geometry, Point } from "./geometry";
import type { Annotation } from "./store";
import type { TimeReport } from "./activeTime";

export interface ImageInfo {
  id: number;
  project: number;
  original_name: string;
  width: number;
  height: number;
  file_url: string;
  thumbnail_url: string;
  status: string;
  version: number;
  assignee: unknown;
  reviewer: unknown;
  priority: number;
}

export interface Label {
  id: number;
  name: string;
  color: string;
  order: number;
  attributes_schema: unknown;
}

export interface ProjectInfo {
  id: number;
  name: string;
  guidelines: string;
  guidelines_html: string;
  labels: Label[];
  my_role: string;
  /** The editor suggests a break after this many minutes of a work session (0: never). */
  break_reminder_minutes?: number;
}

export interface AnnotationSet {
  image: number;
  version: number;
  annotations: Annotation[];
}

export interface Prediction {
  id: number;
  label: number | null;
  class_name: string;
  score: number;
  geometry: Geometry;
  model_version: number | null;
}

export type Verdict = "accept" | "reject";

export interface ReviewComment {
  id: number;
  decision: number | null;
  author: string | null;
  text: string;
  uid: string | null;
  x: number | null;
  y: number | null;
  version: number;
  resolved: boolean;
  resolved_by: string | null;
  created_at: string;
}

/** A comment to create: on the image, pinned to an object (uid) or to a point (x, y). */
export interface CommentInput {
  text: string;
  uid?: string | null;
  x?: number | null;
  y?: number | null;
}

export interface ReviewDecisionInfo {
  id: number;
  decision: Verdict;
  reviewer: string | null;
  annotator: string | null;
  comment: string;
  submitted_version: number;
  version: number;
  objects: { uid: string; decision: Verdict; comment: string }[];
  changes: { added: number; removed: number; modified: number };
  created_at: string;
}

export interface DiffEntry {
  uid: string | null;
  label: number | null;
  geometry?: Geometry;
  before?: Geometry;
  before_label?: number | null;
  changes?: string[];
  iou?: number;
  prediction?: number;
  score?: number;
}

export interface ObjectsDiff {
  added: DiffEntry[];
  removed: DiffEntry[];
  modified: DiffEntry[];
  unchanged: string[];
  counts: { added: number; removed: number; modified: number; unchanged: number };
}

export interface ReviewState {
  image: number;
  status: string;
  version: number;
  annotator: string | null;
  reviewer: string | null;
  required_accepts: number;
  accepted_by: string[];
  decisions: ReviewDecisionInfo[];
  comments: ReviewComment[];
  diff?: { submitted_version: number; current_version: number; proposals: ObjectsDiff; review: ObjectsDiff };
}

export interface DecisionInput {
  decision: Verdict;
  version: number;
  comment: string;
  objects: { uid: string; decision: Verdict; comment?: string }[];
  comments: CommentInput[];
}

/** An object the server normalised while storing it; `geometry` is exactly what it stored. */
export interface Repair {
  uid: string;
  index: number;
  /** Short plain phrases: "clipped to the image", "self-crossing outline repaired", ... */
  changes: string[];
  message: string;
  geometry: Geometry;
}

/** What a successful save answers (the minimal form: no annotations echoed back). */
export interface SetPatch {
  changed: unknown[];
  removed: string[];
  order: string[];
}

export interface SaveResult {
  image: number;
  version: number;
  /** Objects stored in a normalised form; absent from older servers (= none). */
  repaired?: Repair[];
}

/** The one object a 400 refused: `index` in the sent list, `reason` in plain words. */
export interface RefusedObject {
  index: number;
  uid: string;
  reason: string;
}

/** The refused object named by a 400's body ({"detail", "object": {...}}), or null when none is named. */
export function refusedObject(body: Record<string, unknown>): RefusedObject | null {
  const o = body.object as Record<string, unknown> | null | undefined;
  if (!o || typeof o !== "object") return null;
  const index = typeof o.index === "number" ? o.index : -1;
  const uid = typeof o.uid === "string" ? o.uid : "";
  if (index < 0 && !uid) return null;
  const reason = typeof o.reason === "string" && o.reason ? o.reason : plainWords(String(body.detail ?? "the server refused it"));
  return { index, uid, reason };
}

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi;

/**
 * A server message as a person reads it: without object uuids and list positions ("annotation 2
 * (3eed77ff-…): ", "of part 0"), which mean nothing on screen.
 */
export function plainWords(text: string): string {
  return text
    .replace(/annotation \d+ \([^)]*\):\s*/gi, "")
    .replace(UUID, "an object")
    .replace(/\bhole \d+ of part \d+\b/gi, "a hole")
    .replace(/ of part \d+\b/gi, "")
    .replace(/\bpart \d+\b/gi, "the outline")
    .replace(/\s+/g, " ")
    .trim();
}

/** An HTTP answer that is not 2xx; `body` holds the server's {"detail": ...} object. */
export class ApiError extends Error {
  constructor(readonly status: number, readonly body: Record<string, unknown>) {
    super(typeof body.detail === "string" ? body.detail : `HTTP ${status}`);
  }
}

/** fetch itself failed: offline, DNS, server down. */
export class NetworkError extends Error {}

function cookie(name: string): string {
  const m = document.cookie.match(new RegExp(`(?:^|;\\s*)${name}=([^;]*)`));
  return m ? decodeURIComponent(m[1]) : "";
}

export async function request<T>(
  method: string,
  url: string,
  body?: unknown,
  extraHeaders: Record<string, string> = {},
): Promise<{ status: number; data: T }> {
  const headers: Record<string, string> = { Accept: "application/json", ...extraHeaders };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && method !== "HEAD") headers["X-CSRFToken"] = cookie("csrftoken");
  let res: Response;
  try {
    res = await fetch(url, { method, headers, credentials: "same-origin", body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    throw new NetworkError(e instanceof Error ? e.message : String(e));
  }
  const text = res.status === 204 ? "" : await res.text();
  let data: unknown = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = { detail: text.slice(0, 200) };
    }
  }
  if (!res.ok) throw new ApiError(res.status, (data as Record<string, unknown>) ?? { detail: res.statusText });
  return { status: res.status, data: data as T };
}

/** What the mask assists answer: the mask, its bounding box [x, y, w, h] and its area in pixels. */
export interface MaskResult {
  geometry: Geometry;
  bbox: [number, number, number, number];
  area: number;
  /** From SAM: its estimate of the mask's IoU. */
  score?: number;
  /** From SAM: every mask it proposed (three for a lone box or click), best first; the first is this answer. */
  candidates?: MaskResult[];
  /** From box → mask: the engine that answered ("grabcut", "shape", "model", "sam"). */
  engine?: string;
}

/** The box tool's engines on a project (GET /api/projects/<id>/box-engines/). */
export interface BoxEngines {
  available: string[];
  /** What box → mask uses when no engine is chosen: the best measured one. */
  best: string;
  /** Mean IoU on the project's held-out accepted images, null where not measured. */
  scores: Record<string, number | null>;
  names: Record<string, string>;
  /** The plain box's mean IoU on the same objects. */
  box: number | null;
  /** Whose learned shape the "shape" engine uses: the project's own or the active version's (null: none). */
  shape_source?: "project" | "version" | null;
}

/** An intelligent-scissors answer: the edge-following path, and for a closed one the polygon to keep. */
export interface ScissorsResult {
  path: Point[];
  /** The closed path as a valid polygon (edge-following outlines touch or cross themselves). */
  geometry?: Geometry;
  /** What making it valid changed, in plain words (null: nothing). */
  repaired?: string | null;
}

export const api = {
  image: (id: number) => request<ImageInfo>("GET", `/api/images/${id}/`).then((r) => r.data),
  project: (id: number) => request<ProjectInfo>("GET", `/api/projects/${id}/`).then((r) => r.data),
  annotations: (id: number) => request<AnnotationSet>("GET", `/api/images/${id}/annotations/`).then((r) => r.data),
  /** Autosave needs only the new version back (RFC 7240 "return=minimal" skips echoing the set). */
  saveAnnotations: (id: number, version: number, annotations: unknown[]) =>
    request<SaveResult>("PUT", `/api/images/${id}/annotations/`, { version, annotations }, {
      Prefer: "return=minimal",
    }).then((r) => r.data),
  /** What changed since `version` (objects whole, deleted uids, the uids of the whole set in order): a PUT's outcome. */
  patchAnnotations: (id: number, version: number, patch: SetPatch) =>
    request<SaveResult>("PATCH", `/api/images/${id}/annotations/`, { version, ...patch }, {
      Prefer: "return=minimal",
    }).then((r) => r.data),
  predictions: (id: number) =>
    request<{ predictions: Prediction[] }>("GET", `/api/images/${id}/predictions/`).then((r) => r.data.predictions),
  /** `feedback`: only on a ground-truth image of a project that shows the score (ground_truth_feedback). */
  submit: (id: number) => request<{ image: ImageInfo; feedback?: SubmitFeedback }>("POST", `/api/images/${id}/submit/`, {}).then((r) => r.data),
  /** null when the queue is empty (204). */
  nextInQueue: (projectId: number) =>
    request<{ image: { id: number } }>("POST", `/api/projects/${projectId}/queue/next/`, {}).then((r) => (r.status === 204 ? null : r.data.image)),
  convert: (geometry: Geometry, to: "mask" | "polygons", width: number, height: number, tolerance?: number) =>
    request<{ geometry: Geometry }>("POST", "/api/geometry/convert/", { geometry, to, width, height, ...(tolerance != null ? { tolerance } : {}) }).then(
      (r) => r.data.geometry,
    ),
  /** `engine` null: the project's best; `label` is the class the project model segments. */
  boxToMask: (image: number, box: [number, number, number, number], foreground: Point[], background: Point[], engine: string | null = null, label: number | null = null) =>
    request<MaskResult>("POST", "/api/assist/box-to-mask/", { image, box, foreground, background, ...(engine ? { engine } : {}), ...(label != null ? { label } : {}) }).then((r) => r.data),
  boxEngines: (project: number) => request<BoxEngines>("GET", `/api/projects/${project}/box-engines/`).then((r) => r.data),
  /** A box, clicks, or both (SAM takes a lone click too). */
  sam: (image: number, box: [number, number, number, number] | null, foreground: Point[], background: Point[]) =>
    request<MaskResult>("POST", "/api/assist/sam/", {
      image,
      ...(box ? { box } : {}),
      ...(foreground.length + background.length
        ? { points: [...foreground, ...background], labels: [...foreground.map(() => 1), ...background.map(() => 0)] }
        : {}),
    }).then((r) => r.data),
  /** With `closed`, newer servers also answer the outline as a normalised polygon and what that changed. */
  scissors: (image: number, points: Point[], closed: boolean) =>
    request<ScissorsResult>("POST", "/api/assist/scissors/", { image, points, closed }).then((r) => r.data),
};

/** Review endpoints (annotator.review). */
/** One annotator's version of an image drawn by several (consensus), as GET /api/images/<id>/consensus/ gives it. */
export interface ConsensusVersion {
  annotator: string;
  status: "in_progress" | "submitted" | "abandoned";
  version: number;
  submitted_at: string | null;
  annotations: Annotation[];
}

export interface ConsensusMerged {
  label: number;
  geometry: Annotation["geometry"];
  support: number;
  agreement: number | null;
  mean_iou: number | null;
}

export interface ConsensusState {
  image: number;
  annotators: number;
  complete: boolean;
  agreement: number | null;
  versions: ConsensusVersion[];
  pairs: { annotators: string[]; f1: number; mean_iou: number | null }[];
  merge: ConsensusMerged[];
}

export interface GroundTruthAttempt {
  id: number;
  image: number;
  annotator: string;
  status: string;
  precision: number | null;
  recall: number | null;
  f1: number | null;
  mean_iou: number | null;
  annotations: { uid: string; label: number | null; geometry: Geometry }[];
}

/** One thing a ground-truth attempt got wrong (ml.quality's conflict kinds), labels by name. */
export interface FeedbackConflict {
  kind: "missing" | "extra" | "wrong_label" | "low_overlap";
  attempt: string | null;
  iou: number;
  truth_label: string | null;
  attempt_label: string | null;
}

/** The annotator's score on a ground-truth image, shown right after they submit it. */
export interface SubmitFeedback {
  precision: number | null;
  recall: number | null;
  f1: number | null;
  mean_iou: number | null;
  conflicts: FeedbackConflict[];
}

export const groundTruthApi = {
  attempt: (id: number) => request<GroundTruthAttempt>("GET", `/api/ground-truth/attempts/${id}/`).then((r) => r.data),
};

export const consensusApi = {
  get: (id: number) => request<ConsensusState>("GET", `/api/images/${id}/consensus/`).then((r) => r.data),
};

export const reviewApi = {
  state: (id: number, diff: boolean) => request<ReviewState>("GET", `/api/images/${id}/review/?diff=${diff ? 1 : 0}`).then((r) => r.data),
  take: (id: number) => request<{ image: ImageInfo }>("POST", `/api/images/${id}/review/take/`, {}).then((r) => r.data.image),
  decide: (id: number, body: DecisionInput) =>
    request<{ decision: ReviewDecisionInfo; image: ImageInfo; accepts: number; required_accepts: number }>("POST", `/api/images/${id}/review/`, body).then((r) => r.data),
  /** null when nothing is waiting for review (204). */
  next: (projectId: number) =>
    request<{ image: ImageInfo }>("POST", `/api/projects/${projectId}/review/next/`, {}).then((r) => (r.status === 204 ? null : r.data.image)),
  revision: (id: number, version: number) =>
    request<{ version: number; annotations: Annotation[] }>("GET", `/api/images/${id}/revisions/${version}/`).then((r) => r.data),
  resolveComment: (commentId: number, resolved: boolean) =>
    request<ReviewComment>("PATCH", `/api/comments/${commentId}/`, { resolved }).then((r) => r.data),
};

/** One entry of an image's history: the set after save number `version`. */
export interface RevisionInfo {
  version: number;
  action: "save" | "restore" | "import" | "review";
  author: string | null;
  created_at: string;
  object_count: number;
  restored_from: number | null;
  /** What the save changed against the version before it. */
  summary: { added?: number; removed?: number; changed?: number };
}

/** Revision endpoints (annotator.annotations): the history panel. */
export const historyApi = {
  list: (id: number) => request<RevisionInfo[]>("GET", `/api/images/${id}/revisions/`).then((r) => r.data),
  get: (id: number, version: number) =>
    request<RevisionInfo & { annotations: Annotation[] }>("GET", `/api/images/${id}/revisions/${version}/`).then((r) => r.data),
  /** Make `version` current again; `base` is the version the editor holds (409 when someone saved since). */
  restore: (id: number, version: number, base: number) =>
    request<{ image: number; version: number; annotations: Annotation[]; repaired?: Repair[] }>("POST", `/api/images/${id}/revisions/${version}/restore/`, { version: base }).then((r) => r.data),
};

/** Active-time reports (annotator.quality); see activeTime.ts. */
export const timeApi = {
  /** The caller's time on the image and their work session, without reporting anything. */
  state: (imageId: number) => request<TimeReport>("GET", `/api/images/${imageId}/time/`).then((r) => r.data),
  report: (imageId: number, seconds: number) =>
    request<TimeReport>("POST", `/api/images/${imageId}/time/`, { seconds }).then((r) => r.data),
  /** For a page that is going away: sendBeacon cannot set headers, so the CSRF token goes in the form. */
  beacon: (imageId: number, seconds: number): boolean =>
    typeof navigator !== "undefined" && typeof navigator.sendBeacon === "function" &&
    navigator.sendBeacon(`/api/images/${imageId}/time/`, new URLSearchParams({ seconds: seconds.toFixed(3), csrfmiddlewaretoken: cookie("csrftoken") })),
};

/** The server has no such endpoint or feature (404 / 501): the caller falls back or says so. */
export function isUnavailable(e: unknown): boolean {
  return e instanceof ApiError && (e.status === 404 || e.status === 501);
}

export function errorText(e: unknown): string {
  // A refusal (4xx) is about the user's data: its reason is enough; the code helps with server faults.
  if (e instanceof ApiError) return e.status < 500 ? plainWords(e.message) : `${plainWords(e.message)} (HTTP ${e.status})`;
  if (e instanceof NetworkError) return `network error: ${e.message}`;
  return e instanceof Error ? e.message : String(e);
}
