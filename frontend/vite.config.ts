/** Vite build: one ES module + one stylesheet with fixed names, served by Django from frontend/dist. */
import { defineConfig } from "vitest/config";

export default defineConfig({
  build: {
    outDir: "dist/editor",
    emptyOutDir: true,
    // Django's {% static 'editor/editor.js' %} needs stable names, so no content hashes.
    lib: {
      entry: "src/main.ts",
      formats: ["es"],
      fileName: () => "editor.js",
      cssFileName: "editor",
    },
    sourcemap: true,
    minify: true,
    target: "es2022",
  },
  test: {
    environment: "node",
    include: ["tests/**/*.test.ts"],
  },
});
