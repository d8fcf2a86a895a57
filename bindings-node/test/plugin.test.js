// JS plugins: onEvent sees every event, a gate check decides, and any misbehaviour fails closed.
'use strict'

const assert = require('node:assert/strict')
const path = require('node:path')
const test = require('node:test')
const { setImmediate: tick } = require('node:timers/promises')

const { Fourfold, codes } = require('../lib/index.js')
const { workspace, thrown } = require('./util.js')

const DEPLOY = (env) => ({ action: 'tool', name: 'deploy', args: { env } })

function withPlugin(plugin) {
  const dir = workspace()
  return new Fourfold({ policy: { file: path.join(dir, 'policy.toml') }, cost: {}, plugins: [plugin] })
}

test('onEvent gets every event as JSON, on a later tick', async () => {
  const events = []
  const fourfold = withPlugin({ name: 'listener', onEvent: (event) => events.push(event) })
  const session = fourfold.session('coder', 'T-3')
  session.guard({ action: 'read', path: 'src/lib.rs' })
  session.recordUsage('gpt-4o', { input: 100, output: 10 })
  assert.equal(events.length, 0, 'events arrive asynchronously, never inside the call')
  await tick()
  assert.deepEqual(events.map((event) => event.kind), ['gate', 'cost'])
  assert.equal(events[0].gate.outcome, 'allowed')
  assert.equal(events[0].gate.rule.id, 'reads')
  assert.deepEqual([events[0].runId, events[0].agentId, events[0].taskId], [session.runId, 'coder', 'T-3'])
  assert.equal(events[1].cost.inputTokens, 100)
  assert.equal(events[1].cost.costMicros, 350)
})

test('a gate check decides: pass, fail with its reason, or pending with an approval', () => {
  const seen = []
  const fourfold = withPlugin({
    name: 'deploy-check',
    check(request) {
      seen.push(request)
      if (request.args.env === 'staging') return 'pass'
      if (request.args.env === 'prod') return { outcome: 'pending', reason: 'prod needs a person' }
      return { outcome: 'fail', reason: `no environment \`${request.args.env}\`` }
    },
  })
  const session = fourfold.session('coder')
  const allowed = session.guard(DEPLOY('staging'))
  assert.equal(allowed.verdict, 'allow')
  assert.deepEqual(allowed.gates, ['deploy-check'])
  assert.deepEqual(allowed.rule, { id: 'deploy', file: fourfold.policy.root + '/policy.toml', line: 30 })
  assert.deepEqual(seen[0], {
    agent: 'coder',
    task: null,
    runId: session.runId,
    cwd: null,
    resolveSymlinks: false,
    action: 'tool',
    name: 'deploy',
    args: { env: 'staging' },
  })
  const pending = thrown(() => session.guard(DEPLOY('prod')))
  assert.equal(pending.code, codes.GATE_PENDING)
  assert.match(pending.approvalId, /^ap-/)
  const failed = thrown(() => session.guard(DEPLOY('moon')))
  assert.equal(failed.code, codes.POLICY_DENIED)
  assert.match(failed.message, /no environment `moon`/)
  assert.equal(failed.ruleId, 'deploy')
})

test('a check that throws or answers garbage fails its gate, and the throw reaches onError typed', () => {
  const errors = []
  const answers = [undefined, true, 42, 'yes', { outcome: 'maybe' }, Promise.resolve('pass'), null]
  let next = 0
  const fourfold = withPlugin({
    name: 'deploy-check',
    check(request) {
      if (request.args.env === 'boom') throw new TypeError('cannot read the deploy plan')
      return answers[next++]
    },
    onError: (error) => errors.push(error),
  })
  const session = fourfold.session('coder')
  const boom = thrown(() => session.guard(DEPLOY('boom')))
  assert.equal(boom.code, codes.POLICY_DENIED)
  assert.match(boom.message, /check threw: cannot read the deploy plan/)
  assert.equal(errors.length, 1)
  assert.equal(errors[0].code, codes.PLUGIN_ERROR)
  assert.equal(errors[0].plugin, 'deploy-check')
  assert.ok(errors[0].cause instanceof TypeError)
  for (const answer of answers) {
    const denied = thrown(() => session.guard(DEPLOY('staging')))
    assert.equal(denied.code, codes.POLICY_DENIED, String(answer))
    assert.match(denied.message, /not an outcome/)
  }
})

test('a listener that throws never reaches the event loop: onError gets a typed error', async () => {
  const errors = []
  const fourfold = withPlugin({
    name: 'flaky',
    onEvent() {
      throw new Error('disk full')
    },
    onError: (error) => errors.push(error),
  })
  const session = fourfold.session('coder')
  assert.equal(session.guard({ action: 'read', path: 'src/lib.rs' }).verdict, 'allow')
  await tick()
  assert.equal(errors.length, 1)
  assert.equal(errors[0].code, codes.PLUGIN_ERROR)
  assert.match(errors[0].message, /plugin `flaky`: onEvent threw: disk full/)

  // Without onError, the error becomes a process warning.
  const warnings = []
  const onWarning = (warning) => warnings.push(warning)
  process.on('warning', onWarning)
  const quiet = withPlugin({ name: 'flaky', onEvent: () => Promise.reject(new Error('later')) })
  quiet.session('coder').guard({ action: 'read', path: 'src/lib.rs' })
  await tick()
  await tick()
  process.off('warning', onWarning)
  assert.equal(warnings.length, 1)
  assert.equal(warnings[0].code, codes.PLUGIN_ERROR)
  assert.match(warnings[0].message, /onEvent threw: later/)
})

test('a fourfold.toml takes JS plugins too', async () => {
  const dir = workspace('[policy]\nfile = "policy.toml"\n')
  const events = []
  const fourfold = Fourfold.fromConfig(path.join(dir, 'fourfold.toml'), {
    plugins: [{ name: 'deploy-check', onEvent: (event) => events.push(event), check: () => 'pass' }],
  })
  assert.ok(fourfold instanceof Fourfold)
  assert.equal(fourfold.session('coder').guard(DEPLOY('staging')).verdict, 'allow')
  await tick()
  assert.deepEqual(events.map((event) => event.gate.outcome), ['allowed'])
})

test('a plugin that cannot be installed is a FOURFOLD_PLUGIN_ERROR', () => {
  const dir = workspace()
  const policy = { file: path.join(dir, 'policy.toml') }
  for (const plugins of [[{}], [{ name: 'x', check: 'pass' }], [{ name: 'bad name!' }], [{ name: 'a' }, { name: 'a' }], 'all']) {
    const error = thrown(() => new Fourfold({ policy, plugins }))
    assert.equal(error.code, codes.PLUGIN_ERROR, JSON.stringify(plugins))
  }
  assert.equal(thrown(() => Fourfold.fromConfig(path.join(dir, 'policy.toml'), { plugins: [{}] })).code, codes.PLUGIN_ERROR)
})

test('a gate check that ends its own session gets an error, not a hang, and its gate fails', () => {
  const errors = []
  let session
  const fourfold = withPlugin({
    name: 'deploy-check',
    check() {
      session.end()
      return 'pass'
    },
    onError: (error) => errors.push(error),
  })
  session = fourfold.session('coder')
  const failed = thrown(() => session.guard(DEPLOY('staging')))
  assert.equal(failed.code, codes.POLICY_DENIED)
  assert.equal(errors.length, 1)
  // The check threw the session's error, so its gate failed, closed, and onError got it.
  assert.equal(errors[0].code, codes.PLUGIN_ERROR)
  assert.match(errors[0].message, /inside a call that has not returned/)
  // Once the call has returned, ending works.
  assert.equal(session.ended, false)
  session.end()
  assert.equal(session.ended, true)
})
