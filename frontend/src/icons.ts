/**
 * Inline SVG icons (16x16, stroked in currentColor). Emoji such as 👁 or 🔒 need a colour-emoji
 * font that many Linux machines and headless browsers lack (they render as empty boxes), so every
 * icon the editor shows is drawn here instead of taken from a font.
 */
const NS = "http://www.w3.org/2000/svg";

/** Each icon: [path data, filled?] list. */
const ICONS: Record<string, [string, boolean?][]> = {
  eye: [["M1 8s2.6-4.8 7-4.8S15 8 15 8s-2.6 4.8-7 4.8S1 8 1 8z"], ["M8 5.8a2.2 2.2 0 1 0 0 4.4a2.2 2.2 0 1 0 0-4.4z", true]],
  "eye-off": [["M1 8s2.6-4.8 7-4.8S15 8 15 8s-2.6 4.8-7 4.8S1 8 1 8z"], ["M2.5 13.5l11-11"]],
  lock: [["M3.5 7.5h9v6.5h-9z"], ["M5.5 7.5V5a2.5 2.5 0 0 1 5 0v2.5"]],
  unlock: [["M3.5 7.5h9v6.5h-9z"], ["M5.5 7.5V5a2.5 2.5 0 0 1 4.9-.7"]],
  check: [["M3 8.5l3.2 3.2L13 4.8"]],
  cross: [["M4 4l8 8M12 4l-8 8"]],
  pencil: [["M10.8 2.6l2.6 2.6-7.9 7.9-3.3.7.7-3.3z"]],
  undo: [["M5.5 3.5L2.5 6.5l3 3"], ["M2.5 6.5h7a3.5 3.5 0 0 1 0 7H7"]],
  redo: [["M10.5 3.5l3 3-3 3"], ["M13.5 6.5h-7a3.5 3.5 0 0 0 0 7H9"]],
  sun: [["M8 5.5a2.5 2.5 0 1 0 0 5a2.5 2.5 0 1 0 0-5z"], ["M8 1v2M8 13v2M1 8h2M13 8h2M3 3l1.4 1.4M11.6 11.6L13 13M3 13l1.4-1.4M11.6 4.4L13 3"]],
  contrast: [["M8 2a6 6 0 1 0 0 12A6 6 0 1 0 8 2z"], ["M8 2a6 6 0 0 1 0 12z", true]],
  pin: [["M8 1.5a4.5 4.5 0 0 0-4.5 4.5c0 3.3 4.5 8.5 4.5 8.5s4.5-5.2 4.5-8.5A4.5 4.5 0 0 0 8 1.5z"], ["M8 4.6a1.4 1.4 0 1 0 0 2.8a1.4 1.4 0 1 0 0-2.8z", true]],
  comment: [["M2 3h12v8H7l-3 3v-3H2z"]],
  play: [["M5 3l8 5-8 5z", true]],
  warning: [["M8 1.8l6.5 11.7h-13z"], ["M8 6v3.6"], ["M8 11.2v.6"]],
  // Toolbar: tools
  cursor: [["M3.5 2l9 5.2-4 .9 2.4 4.6-1.6.8-2.4-4.6-3.2 2.6z", true]],
  hand: [["M5.5 8V3.8a1 1 0 0 1 2 0V7.5M7.5 7V2.8a1 1 0 0 1 2 0V7M9.5 7V3.6a1 1 0 0 1 2 0V9c0 3-1.6 5-4.3 5-2 0-3-1-4-2.6L2 9.3a1 1 0 0 1 1.6-1.1L5.5 10"]],
  polygon: [["M3 12.5L2.5 5 8 2l5.5 4-2 6.5z"], ["M3 12.5a.9.9 0 1 0 0 .01M2.5 5a.9.9 0 1 0 0 .01M8 2a.9.9 0 1 0 0 .01M13.5 6a.9.9 0 1 0 0 .01M11.5 12.5a.9.9 0 1 0 0 .01", true]],
  hole: [["M2.5 3h11v10h-11z"], ["M6 6h4v4H6z", true]],
  part: [["M1.8 3.5h5.4v5.4H1.8z"], ["M9.5 9.5h4.7v4.7H9.5z"], ["M11.8 2v5M9.3 4.5h5"]],
  brush: [["M13.5 2.5L7.8 8.2"], ["M7.8 8.2c-1.6-.5-3.3.7-3.3 2.6 0 1.5-.9 2.2-2 2.7 3.3.7 6.4-.4 6.6-3.3z", true]],
  eraser: [["M9.5 2.8l3.7 3.7-6.4 6.4H3.1L1.9 11.7z"], ["M6 6.3l3.7 3.7M6.8 12.9h7"]],
  box: [["M2.5 2.5h11v11h-11z"], ["M5.5 10.5c.5-3 2.2-5 5-5.2-.3 2.8-2 4.7-5 5.2z", true]],
  scissors: [["M4.5 5.5a2 2 0 1 0 0-.01M4.5 12.5a2 2 0 1 0 0-.01"], ["M6.2 6.3L14 12M6.2 11.7L14 6"]],
  // Toolbar: actions
  trash: [["M2.5 4h11M6 4V2.5h4V4M4 4l.8 9.5h6.4L12 4"], ["M6.8 6.5v4.8M9.2 6.5v4.8"]],
  forward: [["M2.5 9.5l5.5 3 5.5-3"], ["M8 2.5l5.5 3-5.5 3-5.5-3z", true]],
  backward: [["M2.5 6.5l5.5-3 5.5 3"], ["M8 7.5l5.5 3-5.5 3-5.5-3z", true]],
  "to-mask": [["M2 2.5h6.5v6.5H2z"], ["M9.5 9.5l2-2 2 2M11.5 7.5v6"], ["M3.5 4h3.5v3.5H3.5z", true]],
  "to-poly": [["M2.5 7.5L3 2.5l5.5 1-1 4z"], ["M9.5 9.5l2-2 2 2M11.5 7.5v6"]],
  help: [["M8 1.8a6.2 6.2 0 1 0 0 12.4A6.2 6.2 0 1 0 8 1.8z"], ["M6.2 6.3a1.9 1.9 0 1 1 2.6 1.8c-.6.3-.8.7-.8 1.4"], ["M8 11.3v.4"]],
  save: [["M2.5 2.5h9l2 2v9h-11z"], ["M5 2.5v3.5h5.5V2.5M4.8 13.5V9.5h6.4v4"]],
  "chevron-left": [["M10 3L5 8l5 5"]],
  "chevron-right": [["M6 3l5 5-5 5"]],
  history: [["M2.5 8a5.5 5.5 0 1 0 1.6-3.9"], ["M2 2.8v2.6h2.6"], ["M8 5v3.3l2.2 1.3"]],
  restore: [["M3 8a5 5 0 1 1 1.5 3.6"], ["M2.5 12.8V9.9h2.9"]],
  filter: [["M2 3h12l-4.6 5.3v4.4l-2.8 1.3V8.3z"]],
  asterisk: [["M8 3v10M3.7 5.5l8.6 5M12.3 5.5l-8.6 5"]],
};

export type IconName = keyof typeof ICONS;

/** An inline <svg> icon; `title` becomes its accessible name when the button has no text. */
export function icon(name: IconName, size = 14): SVGSVGElement {
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("viewBox", "0 0 16 16");
  svg.setAttribute("width", String(size));
  svg.setAttribute("height", String(size));
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("class", "ed-svg");
  svg.dataset.icon = name;
  for (const [d, filled] of ICONS[name]) {
    const p = document.createElementNS(NS, "path");
    p.setAttribute("d", d);
    p.setAttribute("fill", filled ? "currentColor" : "none");
    p.setAttribute("stroke", "currentColor");
    p.setAttribute("stroke-width", filled ? "0.8" : "1.5");
    p.setAttribute("stroke-linecap", "round");
    p.setAttribute("stroke-linejoin", "round");
    svg.append(p);
  }
  return svg;
}
