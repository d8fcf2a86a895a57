// The shapes of the JSON values the addon returns (camelCase keys; integers as numbers, so
// nanosecond timestamps keep about a quarter of a microsecond of precision).

/** What an agent asks to do: `{ action: 'read', path: 'src/lib.rs' }`. */
export interface RequestInput {
  /** `read`, `write`, `delete`, `run`, `net` or `tool`. */
  action: 'read' | 'write' | 'delete' | 'run' | 'net' | 'tool'
  /** The path of a `read`, `write` or `delete`. */
  path?: string
  /** The command line of a `run`. */
  command?: string
  /** The URL, `host` or `host:port` of a `net`. */
  url?: string
  /** The tool name of a `tool`. */
  name?: string
  /** The arguments of a `tool`, a JSON object. */
  args?: Record<string, unknown>
  /** The agent asking: required by `Policy.check`; a session sets its own. */
  agent?: string
  /** The task the request is for, which rules' `tasks` match; a session sets its own. */
  task?: string
  /** The working directory of the request. */
  cwd?: string
  /** Resolve symbolic links in the request's paths before matching. */
  resolveSymlinks?: boolean
}

/** The rule that decided, and where it was written. */
export interface RuleOrigin {
  id: string
  /** The policy file, for a rule loaded from one. */
  file: string | null
  /** The 1-based line of the rule in that file. */
  line: number | null
}

/** What the policy decided about a request, and why. */
export interface Decision {
  verdict: 'allow' | 'deny' | 'pending'
  /** The rule that decided, if one did. */
  rule: RuleOrigin | null
  /** Why, in one line. */
  reason: string
  /** The gates involved. */
  gates: string[]
  /** The approval that holds the request (pending) or that allowed it. */
  approvalId: string | null
}

/** What an agent asked to do, as the core records it. */
export interface RecordedRequest {
  agent: string
  task: string | null
  runId: string | null
  cwd: string | null
  resolveSymlinks: boolean
  action: 'read' | 'write' | 'delete' | 'run' | 'net' | 'tool'
  path?: string
  command?: string
  url?: string
  name?: string
  args?: Record<string, unknown>
}

/** A request held by review gates, and what became of it. */
export interface Approval {
  id: string
  request: RecordedRequest
  gates: string[]
  rule: RuleOrigin | null
  reason: string
  createdNs: number
  expiresNs: number | null
  state: 'pending' | 'approved' | 'rejected' | 'used' | 'expired'
  approver?: string
  note?: string
  atNs?: number
}

/** One version of a document. */
export interface DocVersion {
  key: string
  version: number
  hash: string
  atNs: number
  nSections: number
  tokens: number
}

/** A section's freshness and why. */
export interface Marker {
  freshness: 'canonical' | 'stale' | 'duplicate'
  reason: string | null
  copyOf: string | null
}

/** A section of a document version, with its text. */
export interface Section {
  id: string
  key: string
  version: number
  changedIn: number
  headingPath: string[]
  lineStart: number
  lineEnd: number
  tokens: number
  text: string
  marker: Marker
}

/** A document at one version. */
export interface Document {
  version: DocVersion
  current: boolean
  text: string
  frontMatter: Record<string, string>
  sections: Section[]
}

/** One section served by an ask. */
export interface Hit {
  key: string
  sectionId: string
  headingPath: string[]
  pointer: string
  lineStart: number
  lineEnd: number
  version: number
  changedIn: number
  freshness: 'canonical' | 'stale' | 'duplicate'
  reason: string | null
  tokens: number
  text: string | null
  truncated: boolean
  alreadyServed: boolean
  score: number
}

/** What an ask served. */
export interface Answer {
  hits: Hit[]
  copies: Hit[]
  tokensServed: number
  tokensBaseline: number
  budgetTokens: number
  /** Old names the query wrote as code that the documents say were renamed; the search looked for the new names too. */
  renames: Rename[]
  /** Documents with sections good enough to serve that the session's agent may not read (the policy's `read` rules), left out; 0 when nothing was. */
  withheld: number
  /** Whether the store's reranker ordered the hits (their scores are then its own). */
  reranked: boolean
  /** Why the reranker could not order them, if it failed: the search's order was kept. */
  rerankError: string | null
}

/** A canonical current section an ask's search found, given to a reranker to score. */
export interface RerankCandidate {
  key: string
  headingPath: string[]
  text: string
  /** The search's BM25 score. */
  score: number
}

/** An old name in a query that a current canonical section says was renamed (a migration guide's "`orm_mode` -> `from_attributes`"). */
export interface Rename {
  /** The old name, as the query wrote it. */
  old: string
  /** The name the documents say replaces it. */
  new: string
  /** `key:line` of the section that says so. */
  pointer: string
}

/** A section version an agent read, for `changedSince`: a `Hit` or a `Section` also serves. */
export interface SectionRead {
  key: string
  sectionId: string
  version: number
}

/** A section an agent read that is no longer current. */
export interface Change {
  /** The document of the section read. */
  key: string
  sectionId: string
  /** The document version read. */
  version: number
  /** What happened, in one line. */
  reason: string
  /** The current version of the document, if it still exists. */
  currentVersion: number | null
  /** Where the section is now (`key:line`), if it still exists. */
  currentPointer: string | null
}

/** A change to a `ContextStore`, as a `ChangeFeed` gives it. */
export interface ContextChange {
  /** The document. */
  key: string
  /** Its new version, or `null` if it was deleted. */
  version: number | null
  /** The ids of the sections whose text changed or that are new. */
  changedSections: string[]
  /** The ids of the sections that no longer exist. */
  removedSections: string[]
}

/** What `ingestDir` did. */
export interface IngestReport {
  nFiles: number
  nChanged: number
  nUnchanged: number
  /** `[path, why]` of each file left out. */
  skipped: Array<[string, string]>
  deleted: string[]
  bytes: number
}

/** A recorded model call or saving. */
export interface CostRecord {
  kind: 'spent' | 'saved'
  atNs: number
  agent: string
  task: string | null
  run: string | null
  model: string
  provider: string | null
  counts: { input: number; output: number; cacheRead: number; cacheWrite: number; reasoning: number }
  savedTokens: number
  /** The price in micro-units of `currency`, rounded half up. */
  micros: number
  currency: string
  estimated: boolean
  warning: string | null
}

/** An event as a plugin's `onEvent` and a trace's runs give it: `kind` names the field with its data. */
export interface FourfoldEvent {
  runId: string
  agentId: string
  taskId: string | null
  seq: number
  timestampNs: number
  spanId: number | null
  parentSpanId: number | null
  kind: 'decision' | 'action' | 'gate' | 'cost' | 'context'
  decision?: { choice: string; rationale: string; alternatives: string[] }
  action?: {
    tool: string
    argumentsJson: string
    resultDigest: string | null
    durationNs: number | null
    error: string | null
  }
  gate?: {
    requestJson: string
    outcome: 'allowed' | 'denied' | 'pending' | 'approved' | 'rejected' | 'expired' | 'consumed'
    rule: RuleOrigin | null
    gates: string[]
    approvalId: string | null
    approver: string | null
    reason: string
  }
  cost?: Record<string, unknown>
  context?: Record<string, unknown>
}

/** A span of a run read back from a trace. */
export interface SpanNode {
  spanId: number
  parentSpanId: number | null
  name: string
  kind: 'run' | 'step' | 'llm_call' | 'tool_call'
  startNs: number
  endNs: number | null
  error: string | null
  events: FourfoldEvent[]
  /** Indexes into `RunTree.spans`. */
  children: number[]
}

/** One run read back from a trace. */
export interface RunTree {
  runId: string
  agentId: string
  taskId: string | null
  spans: SpanNode[]
  roots: number[]
  looseEvents: FourfoldEvent[]
}

/** One failure and its verdict. */
export interface Diagnosis {
  seq: number
  subject: string
  verdict: 'stale-context' | 'permission' | 'budget' | 'gate-rejected' | 'model'
  [field: string]: unknown
}

/** Why a run did what it did. */
export interface Explanation {
  runId: string
  agentId: string
  taskId: string | null
  actions: Array<Record<string, unknown>>
  gatesWithoutAction: Array<Record<string, unknown>>
  diagnoses: Diagnosis[]
  totals: Record<string, unknown>
}
