// Policy: requests in, decisions out; approvals; a malformed policy is a typed error.
'use strict'

const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const test = require('node:test')
const { inspect } = require('node:util')

const { Policy, codes } = require('../lib/index.js')
const { POLICY, workspace, thrown } = require('./util.js')

// A policy on its own has no `context-fresh` gate built in (a `Fourfold` adds it): declare it.
const STANDALONE = `${POLICY}\n[gates.context-fresh]\nkind = "plugin"\n`
const policy = Policy.fromToml(STANDALONE)

function check(request, verdict, ruleId) {
  const decision = policy.check({ agent: 'coder', ...request })
  assert.equal(decision.verdict, verdict, JSON.stringify(request))
  assert.equal(decision.rule?.id ?? null, ruleId, JSON.stringify(request))
}

test('a check returns the decision and names the rule, deny beats allow, no match is deny', () => {
  check({ action: 'read', path: 'src/lib.rs' }, 'allow', 'reads')
  check({ action: 'read', path: '.env' }, 'deny', 'no-secrets')
  check({ action: 'write', path: 'README.md' }, 'deny', null)
  check({ action: 'run', command: 'git push origin main' }, 'pending', 'push-review')
  check({ action: 'tool', name: 'search', args: { query: 'login' } }, 'allow', 'search')
  check({ action: 'net', url: 'https://example.com' }, 'deny', null)
})

test('a decision comes back whole, whatever its text holds', () => {
  const tools = Policy.fromToml('[[rule]]\nid = "tools"\neffect = "allow"\ntools = [{ name = "s*" }]\n')
  const decision = tools.check({ agent: 'coder', action: 'tool', name: 's\u0000x, ü', args: {} })
  assert.deepEqual(decision, {
    verdict: 'allow',
    rule: { id: 'tools', file: null, line: 1 },
    reason: 'call tool `s\uFFFDx, ü` is allowed by rule `tools`',
    gates: [],
    approvalId: null,
  })
  const none = policy.check({ agent: 'coder', action: 'run', command: 'echo ok' })
  assert.deepEqual([none.verdict, none.rule, none.gates, none.approvalId], ['deny', null, [], null])
})

test('a decision with every field comes back whole: rule file and line, gates, approval id', () => {
  const dir = workspace()
  const file = path.join(dir, 'gated.toml')
  fs.writeFileSync(
    file,
    '[gates.lint]\nkind = "plugin"\n\n[[rule]]\nid = "deploys"\neffect = "gate"\n' +
      'run = ["deploy *"]\ngates = ["human-review", "lint"]\n',
  )
  const gated = Policy.fromFile(file)
  const decision = gated.check({ agent: 'coder', action: 'run', command: 'deploy prod' })
  assert.equal(decision.verdict, 'pending')
  assert.match(decision.approvalId, /^ap-/)
  assert.deepEqual(decision, {
    verdict: 'pending',
    rule: { id: 'deploys', file: fs.realpathSync(file), line: 4 },
    reason: decision.reason,
    gates: ['human-review', 'lint'],
    approvalId: decision.approvalId,
  })
  assert.match(decision.reason, /deploy prod/)
  assert.ok(decision.reason.includes(decision.approvalId), decision.reason)
})

test('a target of any length comes back whole, a character across the 256-byte mark too', () => {
  // The addon reads strings under 256 bytes into a buffer on the stack and longer ones whole:
  // shift a two-, three- and four-byte character across the boundary.
  for (const character of ['\u00fc', '\u20ac', '\u{1F600}']) {
    for (let nAscii = 240; nAscii <= 262; nAscii++) {
      const target = `src/${'a'.repeat(nAscii)}${character}.rs`
      const decision = policy.check({ agent: 'coder', action: 'read', path: target })
      assert.equal(decision.verdict, 'allow')
      assert.ok(decision.reason.includes(`\`${target}\``), `${nAscii} + ${character}`)
    }
  }
})

test("the addon's bound check function refuses bad arguments with a typed error, as the guard does", () => {
  // `lib/index.js` never passes these, but the functions are reachable, so they must not crash.
  const check = policy.__checkFunction()
  for (const [args, message] of [
    [[], /`agent` must be a string/],
    [['coder'], /needs an `action`/],
    [['coder', {}, 'src/lib.rs'], /needs an `action`/],
    [['coder', 99, 'src/lib.rs'], /unknown action number 99/],
    [['coder', 'launch', 'src/lib.rs'], /unknown action `launch`/],
    [['coder', 0, 42], /target must be a string/],
    [['coder', 0, 'src/lib.rs', undefined, 7], /`cwd` must be a string/],
    [['coder', 0, 'src/lib.rs', undefined, undefined, 'yes'], /must be a boolean/],
  ]) {
    const error = thrown(() => check(...args))
    assert.equal(error.code, codes.INVALID_REQUEST, inspect(args))
    assert.match(error.message, message)
  }
  assert.match(check('coder', 0, 'src/lib.rs', undefined, null, null), /^allow\0/)
})

test('a pending request gets an approval id; once approved, the identical request passes once', () => {
  const dir = workspace()
  fs.writeFileSync(path.join(dir, 'standalone.toml'), STANDALONE)
  const onDisk = Policy.fromFile(path.join(dir, 'standalone.toml'))
  const request = { agent: 'coder', action: 'run', command: 'git push origin main' }
  const pending = onDisk.check(request)
  assert.equal(pending.verdict, 'pending')
  assert.match(pending.approvalId, /^ap-/)
  assert.deepEqual(
    onDisk.pendingApprovals().map((approval) => [approval.id, approval.state, approval.request.command]),
    [[pending.approvalId, 'pending', 'git push origin main']],
  )
  const approved = onDisk.approve(pending.approvalId, 'alice', 'reviewed')
  assert.equal(approved.state, 'approved')
  assert.equal(approved.approver, 'alice')
  assert.equal(onDisk.check(request).verdict, 'allow')
  assert.equal(onDisk.check(request).verdict, 'pending')
  assert.equal(onDisk.approval(pending.approvalId).state, 'used')
  assert.equal(onDisk.approval('ap-0000000000000000'), null)
  const again = thrown(() => onDisk.approve(pending.approvalId, 'bob', 'twice'))
  assert.equal(again.code, codes.APPROVAL_ERROR)
  assert.match(again.message, /already used/)
})

test('a malformed policy is a FOURFOLD_INVALID_POLICY with the line and rule', () => {
  const error = thrown(() => Policy.fromToml('[[rule]]\nid = "typo"\neffect = "allow"\nread = ["src/**"]\nbogus = 1\n'))
  assert.equal(error.code, 'FOURFOLD_INVALID_POLICY')
  assert.equal(error.name, 'FourfoldError')
  assert.ok(error instanceof Error)
  assert.match(error.message, /bogus/)
  assert.equal(typeof error.line, 'number')

  const effect = thrown(() => Policy.fromToml('[[rule]]\nid = "x"\neffect = "maybe"\n'))
  assert.equal(effect.code, 'FOURFOLD_INVALID_POLICY')
  assert.equal(effect.ruleId, 'x')
  assert.equal(effect.line, 3)

  const missing = thrown(() => Policy.fromFile('/nonexistent/policy.toml'))
  assert.equal(missing.code, 'FOURFOLD_INVALID_POLICY')
  assert.match(missing.message, /cannot read policy file/)
})

test('a request the binding cannot read is a FOURFOLD_INVALID_REQUEST', () => {
  for (const [request, message] of [
    [{ agent: 'coder', action: 'read' }, /needs a `path`/],
    [{ agent: 'coder', action: 'launch' }, /unknown action `launch`/],
    [{ action: 'read', path: 'src/lib.rs' }, /needs an `agent`/],
    [{ agent: 'coder', action: 'read', path: 42 }, /`path` must be a string/],
    [{ agent: 'coder', action: 'read', path: 'src/lib.rs', cwd: ['/'] }, /`cwd` must be a string/],
    [{ agent: 'coder', action: 'read', path: 'src/lib.rs', resolveSymlinks: 'yes' }, /must be a boolean/],
    [{ agent: 'coder', action: 'tool', name: 'search', args: { n: 1n } }, /cannot be written as JSON/],
    [null, /a request is an object/],
  ]) {
    const error = thrown(() => policy.check(request))
    assert.equal(error.code, codes.INVALID_REQUEST, inspect(request))
    assert.match(error.message, message)
  }
  // Arguments that are not an object reach the policy, which denies them (fail closed).
  const notObject = policy.check({ agent: 'coder', action: 'tool', name: 'search', args: [1, 2] })
  assert.equal(notObject.verdict, 'deny')
  assert.match(notObject.reason, /not a JSON object/)
})

test('a request checked with a task matches task-scoped rules, and permits decides nothing', () => {
  const policy = Policy.fromToml(`
[[rule]]
id = "task-scope"
effect = "allow"
agents = ["coder"]
tasks = ["T-7"]
write = ["src/**"]

[[rule]]
id = "push-review"
effect = "gate"
gates = ["human-review"]
run = ["git push*"]
`)
  const write = (task) => ({ agent: 'coder', action: 'write', path: 'src/a.rs', task })
  assert.equal(policy.check(write('T-7')).verdict, 'allow')
  assert.equal(policy.check(write('T-8')).verdict, 'deny')
  assert.equal(policy.check(write(undefined)).verdict, 'deny')
  assert.equal(policy.permits(write('T-7')), true)
  assert.equal(policy.permits(write('T-8')), false)
  // A gate would hold it: not allowed outright, and no approval is opened.
  assert.equal(policy.permits({ agent: 'coder', action: 'run', command: 'git push origin main' }), false)
  assert.deepEqual(policy.pendingApprovals(), [])
  assert.throws(() => policy.permits({ action: 'read', path: 'x' }), { code: 'FOURFOLD_INVALID_REQUEST' })
})
