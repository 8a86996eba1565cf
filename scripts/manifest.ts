/**
 * Writes `openclaw.plugin.json`: what the plugin is, without running it. `configSchema` is generated from
 * `AiosConfigSchema`, so the manifest cannot drift from what the plugin accepts (a test checks it).
 */
import { writeFileSync } from "node:fs"
import { manifest } from "./manifestContent.js"

writeFileSync(new URL("../openclaw.plugin.json", import.meta.url), `${JSON.stringify(manifest(), null, 2)}\n`)
console.log("wrote openclaw.plugin.json")
