// Types of stage-imports.js, for the tests that import it.
import type { ESLint } from 'eslint'

export declare const STAGES: readonly string[]
export declare const OUTSIDE: readonly string[]
export declare function stageOf(path: string): string | undefined
export declare function refusal(from: string, to: string): string | undefined
declare const plugin: ESLint.Plugin
export default plugin
