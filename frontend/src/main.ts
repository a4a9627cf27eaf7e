/**
 * Entry point: mounts the editor into #editor-root using its data-* attributes, loads the image,
 * project, annotations and predictions, and publishes window.__editor / __editorReady /
 * __editorStats for end-to-end tests and bench/editor_perf.py.
 */
import "./editor.css";
import { trackActiveTime } from "./activeTime";
import { api, errorText } from "./api";
import { Editor, type EditorOptions } from "./editor";
import { Journal } from "./journal";
import { ConsensusPanel } from "./consensus";
import { AttemptOverlay, attemptParam } from "./groundtruth";
import { ReviewMode, registerReviewTools } from "./review";
import { defaultTools } from "./tools";

export { Editor } from "./editor";
export { ToolRegistry } from "./tools/types";
export { ReviewMode, reviewOf } from "./review";
export type { Tool, ToolPointer } from "./tools/types";

interface EditorWindow {
  __editor?: Editor;
  __editorReady?: number;
  __editorStats?: Record<string, unknown>;
  __editorTools?: ReturnType<typeof defaultTools>;
}

const w = window as unknown as EditorWindow;

export async function mount(root: HTMLElement): Promise<Editor | null> {
  const stats: Record<string, unknown> = { navigationStart: 0, mountStart: performance.now() };
  w.__editorStats = stats;
  const d = root.dataset;
  const opts: EditorOptions = {
    imageId: Number(d.imageId),
    projectId: Number(d.projectId),
    mode: d.mode === "review" ? "review" : "annotate",
    username: d.username ?? "",
    nextUrl: d.nextUrl ?? "",
    sam: d.sam === "1",
    // The server decided whether this person may edit the image now (images/selectors.py edit_access).
    readOnly: d.readOnly === "1" ? { reason: d.readOnlyReason ?? "You cannot change this image.", hint: d.readOnlyHint ?? "" } : null,
    list: {
      previous: Number(d.prevImage) || null,
      next: Number(d.nextImage) || null,
      position: Number(d.listPosition) || null,
      count: Number(d.listCount) || 0,
      filters: d.listFilters ?? "",
      url: d.listUrl ?? `/projects/${d.projectId}/images/`,
    },
  };
  root.textContent = "Loading…";
  try {
    // The journal of unsaved edits opens alongside the data; without IndexedDB it is null.
    const journal = Journal.open();
    const [image, project, set, predictions] = await Promise.all([
      api.image(opts.imageId),
      api.project(opts.projectId),
      api.annotations(opts.imageId),
      // Predictions are optional: an image without a model run still opens.
      api.predictions(opts.imageId).catch(() => []),
    ]);
    stats.dataLoadedAt = performance.now();
    // Other scripts (review mode) may register extra tools before the editor starts.
    const tools = w.__editorTools ?? defaultTools();
    if (opts.mode === "review") registerReviewTools(tools);
    const editor = new Editor(root, { ...opts, journal: await journal }, image, project, set.annotations, set.version, predictions, tools);
    stats.frames = editor.renderer.frames;
    stats.objects = editor.store.size;
    w.__editor = editor;
    // "Interactive": data loaded, first full render done and input handlers attached.
    w.__editorReady = performance.now();
    stats.readyAt = w.__editorReady;
    editor.emit("editor:ready", {});
    // Edits this browser kept but the server never got (tab closed, crash, offline) are offered back.
    void editor.journal.read().then((entry) => editor.offerRestore(entry));
    // Active time counts while annotating (not reviewing, not read-only); it stops with the editor.
    if (opts.mode === "annotate" && !opts.readOnly) trackActiveTime(editor);
    // Review data (decisions, comments, diff) loads after the editor is interactive.
    void new ReviewMode(editor).start();
    // Several annotators' versions of the image (consensus), for the reviewer to compare with the merge.
    if (opts.mode === "review") void new ConsensusPanel(editor).start();
    // An annotator's attempt over the ground truth (the Quality page's conflicts link here).
    const attempt = attemptParam(location.search);
    if (attempt !== null) void new AttemptOverlay(editor, attempt).start();
    return editor;
  } catch (e) {
    root.textContent = "";
    const p = document.createElement("p");
    p.className = "ed-fatal";
    p.dataset.testid = "load-error";
    p.textContent = `The editor could not load: ${errorText(e)}`;
    root.append(p);
    return null;
  }
}

const rootEl = document.getElementById("editor-root");
if (rootEl) void mount(rootEl);
