#!/usr/bin/env node
/**
 * The `effect-aios` executable.
 *
 * @since 0.1.0
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import { run } from "./Cli.js"
import * as Output from "./Output.js"

NodeRuntime.runMain(run(process.argv).pipe(Effect.provide(Layer.merge(NodeContext.layer, Output.layerProcess))), {
  disableErrorReporting: true,
  // `run` logs to stderr itself; the pretty logger would write to stdout, which carries the answer only.
  disablePrettyLogger: true,
  teardown: (exit, onExit) =>
    onExit(
      Exit.isSuccess(exit)
        ? typeof exit.value === "number" ? exit.value : 0
        : Cause.isInterruptedOnly(exit.cause) ? 0 : 1
    )
})
