// Fourfold and AgentSession: the four controls through one session, and each refusal's error.
'use strict'

const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const test = require('node:test')

const { AgentSession, Fourfold, TraceReader, codes } = require('../lib/index.js')
const { FINDINGS_POLICY, workspace, thrown } = require('./util.js')

const CONFIG = `
[policy]
file = "policy.toml"

[trace]
file = "traces/fourfold.trace"

[context]

[cost]
savings_model = "gpt-4o"

[[budget]]
scope = "agent:coder"
unit = "tokens"
hard = 5000
`

const AUTH_V1 = '# Auth\n\n## Logging in\n\nCall `login(user, password)`.\n'
const AUTH_V2 = '# Auth\n\n## Logging in\n\nCall `login(credentials)`; the two-argument form is gone.\n'

test('a governed run: context, cost, a stale-context hold, a re-read, a denial, and the trace', async () => {
  const dir = workspace(CONFIG)
  const fourfold = Fourfold.fromConfig(path.join(dir, 'fourfold.toml'))
  assert.ok(fourfold instanceof Fourfold)
  const docs = fourfold.context
  docs.put('docs/auth.md', AUTH_V1)

  const session = fourfold.session('coder', 'T-12')
  assert.ok(session instanceof AgentSession)
  assert.deepEqual([session.agent, session.task], ['coder', 'T-12'])
  const answer = await session.ask('login', { budgetTokens: 400 })
  assert.equal(answer.hits[0].key, 'docs/auth.md')
  const call = session.reserve('gpt-4o', { input: 1200, output: 300 })
  const record = call.commit({ input: 1150, output: 120 })
  assert.equal(record.run, session.runId)
  session.decide('edit src/auth/login.rs', 'the docs say login takes a user and a password')

  docs.put('docs/auth.md', AUTH_V2)
  const write = { action: 'write', path: 'src/auth/login.rs' }
  const stale = thrown(() => session.guard(write))
  assert.equal(stale.code, codes.STALE_CONTEXT)
  assert.equal(stale.ruleId, 'coder-auth')
  assert.deepEqual(
    stale.changes.map((change) => [change.key, change.version, change.currentVersion]),
    [['docs/auth.md', 1, 2]],
  )
  const reread = session.reread()
  assert.match(reread[0].text, /login\(credentials\)/)
  assert.equal(session.guard(write).verdict, 'allow')
  session.act({ tool: 'edit', args: { path: 'src/auth/login.rs' }, durationMs: 2 })

  const denied = thrown(() => session.guard({ action: 'read', path: '.env' }))
  assert.equal(denied.code, codes.POLICY_DENIED)
  assert.equal(denied.ruleId, 'no-secrets')
  assert.equal(denied.ruleLine, 14)
  assert.match(denied.ruleFile, /policy\.toml$/)

  const over = thrown(() => session.reserve('gpt-4o', { input: 10_000 }))
  assert.equal(over.code, codes.BUDGET_EXCEEDED)
  assert.equal(over.budget, 'agent:coder/tokens')
  assert.equal(over.spent, 1270)

  session.end()
  assert.equal(session.ended, true)
  assert.equal(thrown(() => session.guard(write)).code, codes.INVALID_REQUEST)
  fourfold.tracer.flush()

  const [explanation] = await new TraceReader(path.join(dir, 'traces', 'fourfold.trace')).explain()
  assert.deepEqual(
    explanation.diagnoses.map((diagnosis) => diagnosis.verdict),
    ['stale-context', 'permission', 'budget'],
  )
})

test('a refused guard throws an Error with the code and every field of its decision', () => {
  const dir = workspace()
  const fourfold = new Fourfold({ policy: { file: path.join(dir, 'policy.toml') } })
  const session = fourfold.session('coder')
  const policyFile = path.join(dir, 'policy.toml')
  // The fields of the policy's own decision for the same request (policy.check does not throw).
  const fieldsOf = (error) => ({
    code: error.code,
    name: error.name,
    reason: error.reason,
    ruleId: error.ruleId,
    ruleFile: error.ruleFile,
    ruleLine: error.ruleLine,
    gates: error.gates,
    approvalId: error.approvalId,
  })
  const denied = thrown(() => session.guard({ action: 'read', path: '.env' }))
  const decision = fourfold.policy.check({ agent: 'coder', action: 'read', path: '.env' })
  assert.ok(denied instanceof Error)
  assert.deepEqual(fieldsOf(denied), {
    code: codes.POLICY_DENIED,
    name: 'FourfoldError',
    reason: decision.reason,
    ruleId: 'no-secrets',
    ruleFile: policyFile,
    ruleLine: 14,
    gates: [],
    approvalId: null,
  })
  assert.equal(denied.message, `denied: ${decision.reason}`)
  // The stack starts at the caller's call of guard, not inside the package.
  assert.match(denied.stack.split('\n')[1], /at AgentSession\.guard /)
  assert.match(denied.stack.split('\n')[2], /session\.test\.js/)
  const pending = thrown(() => session.guard({ action: 'run', command: 'git push origin main' }))
  assert.deepEqual(fieldsOf(pending), {
    code: codes.GATE_PENDING,
    name: 'FourfoldError',
    reason: pending.reason,
    ruleId: 'push-review',
    ruleFile: policyFile,
    ruleLine: 19,
    gates: ['human-review'],
    approvalId: pending.approvalId,
  })
  assert.match(pending.approvalId, /^ap-[0-9a-f]+$/)
  assert.ok(pending.reason.includes(pending.approvalId), pending.reason)
  assert.equal(pending.message, `pending approval \`${pending.approvalId}\`: ${pending.reason}`)
})

test('a review gate holds the request with its approval id until a reviewer approves it', () => {
  const dir = workspace()
  const fourfold = new Fourfold({ policy: { file: path.join(dir, 'policy.toml') } })
  const session = fourfold.session('coder')
  const push = { action: 'run', command: 'git push origin main' }
  const pending = thrown(() => session.guard(push))
  assert.equal(pending.code, codes.GATE_PENDING)
  assert.match(pending.approvalId, /^ap-[0-9a-f]+$/)
  assert.deepEqual(pending.gates, ['human-review'])
  assert.equal(pending.ruleId, 'push-review')
  fourfold.policy.approve(pending.approvalId, 'alice', 'diff reviewed')
  assert.equal(session.guard(push).approvalId, pending.approvalId)
  assert.equal(thrown(() => session.guard(push)).code, codes.GATE_PENDING)
})

test('a session cannot act for another agent, and a missing control is a typed error', async () => {
  const dir = workspace()
  const fourfold = new Fourfold({ policy: { toml: fs.readFileSync(path.join(dir, 'policy.toml'), 'utf8') } })
  assert.equal(fourfold.tracer, null)
  assert.equal(fourfold.context, null)
  assert.equal(fourfold.cost, null)
  const session = fourfold.session('reviewer')
  // The rule `coder-auth` is for the coder only; the session's agent replaces the request's.
  assert.equal(thrown(() => session.guard({ agent: 'coder', action: 'write', path: 'src/auth/x.rs' })).code, codes.POLICY_DENIED)
  await assert.rejects(session.ask('login', { budgetTokens: 100 }), { code: codes.MISSING_CONTROL, missing: 'context store' })
  assert.equal(thrown(() => session.recordUsage('gpt-4o', { input: 1 })).missing, 'cost meter')
  assert.equal(session.span('step', 'step'), null)
  assert.equal(thrown(() => session.span('x', 'nap')).code, codes.INVALID_REQUEST)
})

test('a finding is written back only where a rule allows it, and is served to others', async () => {
  const fourfold = new Fourfold({ policy: { toml: FINDINGS_POLICY }, context: {} })
  const session = fourfold.session('coder')
  assert.equal(thrown(() => session.recordFinding('notes', 'Builds are slow on Mondays.')).code, codes.POLICY_DENIED)
  const version = session.recordFinding('findings/flaky', 'The auth tests fail when run in parallel.')
  assert.deepEqual([version.key, version.version], ['records/findings-flaky.md', 1])
  const answer = await fourfold.session('reviewer').ask('auth tests parallel', { budgetTokens: 300 })
  assert.equal(answer.hits[0].key, 'records/findings-flaky.md')
  const bare = new Fourfold({ policy: { toml: FINDINGS_POLICY } })
  assert.equal(thrown(() => bare.session('coder').recordFinding('findings/x', 'text')).missing, 'context store')
})

test('options that cannot build a Fourfold are typed errors', () => {
  const dir = workspace()
  assert.equal(thrown(() => new Fourfold({ policy: {} })).code, codes.INVALID_REQUEST)
  assert.equal(thrown(() => new Fourfold()).code, codes.INVALID_REQUEST)
  assert.equal(thrown(() => new Fourfold({ trace: { file: 'x.trace' } })).code, codes.INVALID_REQUEST)
  assert.equal(thrown(() => new Fourfold({ policy: { toml: 'x = [' } })).code, codes.INVALID_POLICY)
  const policy = { file: path.join(dir, 'policy.toml') }
  assert.equal(thrown(() => new Fourfold({ policy, cost: { budgets: [{ scope: 'fleet', unit: 'XYZ', hard: 1 }] } })).code, codes.CONFIG_ERROR)
  fs.writeFileSync(path.join(dir, 'bad.toml'), '[policy]\nfile = "policy.toml"\n[tracing]\n')
  const config = thrown(() => Fourfold.fromConfig(path.join(dir, 'bad.toml')))
  assert.equal(config.code, codes.CONFIG_ERROR)
  assert.match(config.message, /tracing/)
  assert.equal(thrown(() => Fourfold.fromConfig(path.join(dir, 'none.toml'))).code, codes.CONFIG_ERROR)
})

test('a session is served only what the policy lets its agent read', async () => {
  const policy = { toml: '[[rule]]\nid = "public-docs"\neffect = "allow"\nagents = ["coder"]\nread = ["docs/public/**"]\n' }
  const tokens = '# Tokens\n\n## Rotation\n\nLogin tokens rotate every hour; call `refresh_token()` before the hour is up.\n'
  const file = path.join(workspace(), 'scoped.trace')
  const fourfold = new Fourfold({ policy, context: {}, trace: { file } })
  fourfold.context.put('docs/public/tokens.md', tokens)
  fourfold.context.put('docs/internal/tokens.md', tokens.replace('every hour', 'on every deploy of the vault'))
  const answer = await fourfold.session('coder').ask('login tokens rotate', { budgetTokens: 2000 })
  assert.deepEqual(answer.hits.map((hit) => hit.key), ['docs/public/tokens.md'])
  assert.equal(answer.withheld, 1)
  const nothing = await fourfold.session('visitor').ask('login tokens rotate', { budgetTokens: 2000 })
  assert.deepEqual([nothing.hits.length, nothing.withheld], [0, 2])
  // The trace's context events say how much each ask was kept from.
  fourfold.tracer.flush()
  const runs = await new TraceReader(file).runs()
  const contexts = runs.flatMap((run) => run.looseEvents).filter((event) => event.kind === 'context')
  assert.deepEqual(contexts.map((event) => event.context.withheld), [1, 2])
  // `contextScope: 'all'` serves every document, whatever the policy says about reading.
  const open = new Fourfold({ policy, context: {}, contextScope: 'all' })
  open.context.put('docs/internal/tokens.md', tokens)
  const served = await open.session('visitor').ask('login tokens', { budgetTokens: 500 })
  assert.deepEqual(served.hits.map((hit) => hit.key), ['docs/internal/tokens.md'])
  const badScope = thrown(() => new Fourfold({ policy, contextScope: 'everyone' }))
  assert.equal(badScope.code, codes.INVALID_REQUEST)
  assert.match(badScope.message, /`contextScope` is "policy" .* or "all", not "everyone"/)
})

test("a session's asks use its store's reranker, and it is never given what the policy withholds", async () => {
  const policy = { toml: '[[rule]]\nid = "public-docs"\neffect = "allow"\nagents = ["coder"]\nread = ["docs/public/**"]\n' }
  const fourfold = new Fourfold({ policy, context: {} })
  fourfold.context.put('docs/public/tokens.md', '# Tokens\n\n## Rotation\n\nLogin tokens rotate every hour.\n')
  fourfold.context.put('docs/public/sessions.md', '# Sessions\n\n## Login tokens\n\nLogin tokens are checked by the gateway on every call.\n')
  fourfold.context.put('docs/internal/tokens.md', '# Tokens\n\n## Signing\n\nLogin tokens are signed with the vault key.\n')
  const keys = []
  fourfold.context.setReranker((query, candidates) => {
    keys.push(...candidates.map((candidate) => candidate.key))
    return candidates.map((candidate) => (candidate.key.endsWith('sessions.md') ? 1 : 0))
  })
  const session = fourfold.session('coder')
  const answer = await session.ask('login tokens rotate', { budgetTokens: 2000 })
  assert.deepEqual([answer.reranked, answer.hits[0].key, answer.withheld], [true, 'docs/public/sessions.md', 1])
  assert.ok(keys.length > 0 && keys.every((key) => key.startsWith('docs/public/')), keys.join(', '))
  const again = await session.ask('login tokens rotate', { budgetTokens: 2000 })
  assert.equal(again.hits[0].alreadyServed, true)
})
