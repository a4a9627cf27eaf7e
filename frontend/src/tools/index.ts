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
  r.register("polygon", (ctx) => createPolygonTool(ctx, "new"));
  r.register("hole", (ctx) => createPolygonTool(ctx, "hole"));
  r.register("part", (ctx) => createPolygonTool(ctx, "part"));
  r.register("brush", (ctx) => createBrushTool(ctx, false));
  r.register("eraser", (ctx) => createBrushTool(ctx, true));
  r.register("boxmask", createBoxMaskTool);
  r.register("scissors", createScissorsTool);
  return r;
}
