/**
 * The plugin as a user gets it: `npm pack` of the built project, unpacked into a temp folder, so the package's
 * `files` are proven enough. The plugin folder is the bundled one, `dist/openclaw-plugin` (one file, no
 * dependencies: see scripts/bundlePlugin.ts), so nothing needs installing there.
 */
import { spawnSync } from "node:child_process"
import { existsSync, statSync } from "node:fs"
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import { bundlePlugin, defaultOutDir } from "../../scripts/bundlePlugin.js"

const projectRoot = path.resolve(import.meta.dirname, "../..")

/** A staged plugin folder and how to remove it. */
export interface StagedPlugin {
  /** The folder to load (`plugins.load.paths`, `plugins install -l`, `setup --plugin-dir`). */
  readonly pluginDir: string
  /** The unpacked package root. */
  readonly packageDir: string
  readonly cleanup: () => Promise<void>
}

const mtime = (file: string): number => (existsSync(file) ? statSync(file).mtimeMs : 0)

/**
 * Packs and unpacks the project. The bundle is rebuilt first when `dist/openclaw/index.js` is newer than it (a
 * `tsc`-only build), so the staged plugin is always the code under test.
 */
export const stagePlugin = async (): Promise<StagedPlugin> => {
  const entry = path.join(projectRoot, "dist/openclaw/index.js")
  if (!existsSync(entry)) throw new Error("dist/ is missing: run `npm run build` first (npm test does)")
  if (mtime(path.join(defaultOutDir, "index.js")) < mtime(entry)) await bundlePlugin()
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "effect-aios-plugin-"))
  const cleanup = () => fs.rm(dir, { recursive: true, force: true })
  try {
    const pack = spawnSync("npm", ["pack", "--json", "--ignore-scripts", "--pack-destination", dir], {
      cwd: projectRoot,
      encoding: "utf8",
      timeout: 120_000
    })
    if (pack.status !== 0) throw new Error(`npm pack failed: ${pack.stderr}`)
    const [packed] = JSON.parse(pack.stdout) as Array<{ filename: string }>
    const untar = spawnSync("tar", ["xzf", path.join(dir, packed!.filename), "-C", dir], { encoding: "utf8" })
    if (untar.status !== 0) throw new Error(`tar failed: ${untar.stderr}`)
    const packageDir = path.join(dir, "package")
    const pluginDir = path.join(packageDir, "dist", "openclaw-plugin")
    if (!existsSync(path.join(pluginDir, "index.js"))) throw new Error(`the package lacks ${pluginDir}/index.js`)
    return { pluginDir, packageDir, cleanup }
  } catch (error) {
    await cleanup()
    throw error
  }
}
