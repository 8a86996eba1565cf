import { defineConfig } from "vitest/config"

// The e2e suite drives a real OpenClaw: one file at a time, long bounds (each turn is a separate OpenClaw process).
export default defineConfig({
  test: {
    include: ["test/e2e/**/*.test.ts"],
    fileParallelism: false,
    testTimeout: 180_000,
    hookTimeout: 600_000
  }
})
