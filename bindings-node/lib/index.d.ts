// Types of the `fourfold` package: the generated declarations of the addon, with the pieces the
// JS layer (`index.js`) adds or changes.
import * as native from '../index'
import type { Decision, FourfoldEvent, RequestInput } from './types'

export * from '../index'
export type * from './types'

// Methods that `index.js` adds to the addon's classes (they read the request in JS, where it is
// cheap, and hand the addon its parts).
declare module '../index' {
  interface AgentSession {
    /**
     * Checks a tool call before it runs, as this session's agent, task and run. Returns the
     * decision when it may go ahead; otherwise throws `FOURFOLD_POLICY_DENIED` (with `ruleId`),
     * `FOURFOLD_GATE_PENDING` (with `approvalId`), `FOURFOLD_STALE_CONTEXT` (with `changes`) or
     * `FOURFOLD_BUDGET_EXCEEDED`.
     */
    guard(request: RequestInput): Decision
  }
  interface Policy {
    /** Decides `request` (which needs an `agent`); a denial is a decision, not an error. */
    check(request: RequestInput & { agent: string }): Decision
    /**
     * Whether `request` (which needs an `agent`) is allowed outright, deciding nothing: no event is
     * recorded, no gate runs, no approval is opened, and a request a gate would hold is not allowed.
     * For filtering what an agent is shown, not for letting an action go ahead (that is `check`).
     */
    permits(request: RequestInput & { agent: string }): boolean
  }
  interface ChangeFeed {
    /** Each change in turn, waited for off the JS thread, until the feed is closed. */
    [Symbol.asyncIterator](): AsyncGenerator<import('./types').ContextChange, void, undefined>
  }
}

/** The error codes, by short name: `codes.POLICY_DENIED === 'FOURFOLD_POLICY_DENIED'`. */
export declare const codes: {
  readonly ERROR: 'FOURFOLD_ERROR'
  readonly POLICY_DENIED: 'FOURFOLD_POLICY_DENIED'
  readonly GATE_PENDING: 'FOURFOLD_GATE_PENDING'
  readonly BUDGET_EXCEEDED: 'FOURFOLD_BUDGET_EXCEEDED'
  readonly STALE_CONTEXT: 'FOURFOLD_STALE_CONTEXT'
  readonly TRACE_CORRUPT: 'FOURFOLD_TRACE_CORRUPT'
  readonly CONFIG_ERROR: 'FOURFOLD_CONFIG_ERROR'
  readonly INVALID_POLICY: 'FOURFOLD_INVALID_POLICY'
  readonly APPROVAL_ERROR: 'FOURFOLD_APPROVAL_ERROR'
  readonly TRACE_ERROR: 'FOURFOLD_TRACE_ERROR'
  readonly CONTEXT_ERROR: 'FOURFOLD_CONTEXT_ERROR'
  readonly COST_ERROR: 'FOURFOLD_COST_ERROR'
  readonly UNKNOWN_MODEL: 'FOURFOLD_UNKNOWN_MODEL'
  readonly MISSING_CONTROL: 'FOURFOLD_MISSING_CONTROL'
  readonly STORE_ERROR: 'FOURFOLD_STORE_ERROR'
  readonly PLUGIN_ERROR: 'FOURFOLD_PLUGIN_ERROR'
  readonly INVALID_REQUEST: 'FOURFOLD_INVALID_REQUEST'
  readonly PANIC: 'FOURFOLD_PANIC'
}

/** A fourfold error code. */
export type FourfoldErrorCode = (typeof codes)[keyof typeof codes]

/** A fourfold error: a JS `Error` named `FourfoldError`, with a stable `code` and fields. */
export interface FourfoldError extends Error {
  name: 'FourfoldError'
  code: FourfoldErrorCode
  /** The rule that refused (denied, pending, stale context). */
  ruleId?: string | null
  ruleFile?: string | null
  ruleLine?: number | null
  /** The pending approval (`FOURFOLD_GATE_PENDING`). */
  approvalId?: string | null
  /** The gates involved. */
  gates?: string[]
  /** Why, in one line. */
  reason?: string
  /** What changed since it was read (`FOURFOLD_STALE_CONTEXT`). */
  changes?: import('./types').Change[]
  /** The budget (`FOURFOLD_BUDGET_EXCEEDED`), as `scope/unit`. */
  budget?: string
  unit?: string
  limit?: number
  spent?: number
  reserved?: number
  requested?: number
  /** The policy file and line of an invalid policy (`FOURFOLD_INVALID_POLICY`). */
  file?: string | null
  line?: number | null
  /** The unknown model (`FOURFOLD_UNKNOWN_MODEL`). */
  model?: string
  /** The byte offset of the damage (`FOURFOLD_TRACE_CORRUPT`). */
  offset?: number
  frameIdx?: number
  /** The control a session lacks (`FOURFOLD_MISSING_CONTROL`), such as `context store`. */
  missing?: string
  /** The plugin and hook that threw (`FOURFOLD_PLUGIN_ERROR`), and what it threw. */
  plugin?: string
  hook?: 'onEvent' | 'check'
  cause?: unknown
}

/** Whether `error` is a fourfold error, and of `code` when one is given. */
export declare function isFourfoldError(error: unknown, code?: FourfoldErrorCode): error is FourfoldError

/** What a gate check answers: the outcome, or the outcome with a reason. */
export type GateAnswer =
  | 'pass'
  | 'fail'
  | 'pending'
  | { outcome: 'pass' | 'fail' | 'pending'; reason?: string }

/**
 * A plugin written in JS. `onEvent` gets every event, on a later tick of the event loop.
 * `check` answers a gate of the plugin's name, synchronously, while the policy decides; a check
 * that throws or answers anything else fails its gate. A throw in either is handed to `onError`
 * as a `FOURFOLD_PLUGIN_ERROR` (a process warning without it).
 */
export interface Plugin {
  name: string
  onEvent?: (event: FourfoldEvent) => void | Promise<void>
  check?: (request: import('./types').RecordedRequest) => GateAnswer
  onError?: (error: FourfoldError) => void
}

/** The options of `new Fourfold`, with JS plugins. */
export interface FourfoldInit extends native.FourfoldOptions {
  plugins?: Plugin[]
}

/** The four controls of one agent fleet, wired together. */
export declare class Fourfold extends native.Fourfold {
  constructor(options: FourfoldInit)
  /** Builds the controls a `fourfold.toml` describes, with `options.plugins`. */
  static fromConfig(path: string, options?: { plugins?: Plugin[] }): Fourfold
}
