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
