/** The default tool set, registered by name (order = toolbar order). */
import { createBoxMaskTool, createScissorsTool } from "./assist";
import { createBrushTool } from "./brush";
import { createEditTool, createPanTool } from "./edit";
import { createPolygonTool } from "./polygon";
import { ToolRegistry } from "./types";

export function defaultTools(): ToolRegistry {
  const r = new ToolRegistry();
  r.register("edit", createEditTool);
  r.register("pan", createPanTool);
  r.register("polygon", (ed) => createPolygonTool(ed, "new"));
  r.register("hole", (ed) => createPolygonTool(ed, "hole"));
  r.register("part", (ed) => createPolygonTool(ed, "part"));
  r.register("brush", (ed) => createBrushTool(ed, false));
  r.register("eraser", (ed) => createBrushTool(ed, true));
  r.register("boxmask", createBoxMaskTool);
  r.register("scissors", createScissorsTool);
  return r;
}
