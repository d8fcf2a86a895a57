// Tracer and TraceReader: runs read back off the JS thread, and damaged traces as typed errors.
'use strict'

const assert = require('node:assert/strict')
const { execFileSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')
const test = require('node:test')

const { Fourfold, TraceReader, Tracer, codes } = require('../lib/index.js')
const { workspace } = require('./util.js')

/** A trace of one run with a decision, a denial and an action in a span; returns its path. */
function writeTrace(dir) {
  const file = path.join(dir, 'fourfold.trace')
  const fourfold = new Fourfold({ policy: { file: path.join(dir, 'policy.toml') }, trace: { file } })
  const session = fourfold.session('coder', 'T-1')
  session.decide('read the docs', 'they say how to log in', ['guess'])
  assert.throws(() => session.guard({ action: 'read', path: '.env' }), { code: codes.POLICY_DENIED })
  const step = session.span('fix login', 'step')
  const call = step.child('edit', 'tool_call')
  call.act({ tool: 'edit', args: { path: 'src/auth/login.rs' }, durationMs: 3, error: 'merge conflict' })
  call.end('merge conflict')
  step.end()
  session.end('gave up')
  assert.ok(fourfold.tracer instanceof Tracer)
  fourfold.tracer.flush()
  assert.equal(fourfold.tracer.nDropped, 0)
  return file
}

test('runs come back as span trees with their events, and explain gives verdicts', async () => {
  const dir = workspace()
  const file = writeTrace(dir)
  const reader = new TraceReader(file)
  const runs = await reader.runs()
  assert.equal(runs.length, 1)
  const [run] = runs
  assert.deepEqual([run.agentId, run.taskId], ['coder', 'T-1'])
  assert.deepEqual(
    run.spans.map((span) => [span.name, span.kind, span.error]),
    [
      ['coder', 'run', 'gave up'],
      ['fix login', 'step', null],
      ['edit', 'tool_call', 'merge conflict'],
    ],
  )
  assert.deepEqual(run.spans[0].children, [1])
  assert.deepEqual(run.spans[1].children, [2])
  const action = run.spans[2].events[0]
  assert.equal(action.kind, 'action')
  assert.equal(action.action.durationNs, 3_000_000)
  assert.deepEqual(JSON.parse(action.action.argumentsJson), { path: 'src/auth/login.rs' })
  assert.deepEqual(run.spans[0].events.map((event) => event.kind), ['decision'])
  // The policy records its decision for the run, outside any span.
  assert.deepEqual(run.looseEvents.map((event) => [event.kind, event.gate.outcome]), [['gate', 'denied']])

  const [explanation] = await reader.explain()
  assert.deepEqual(
    explanation.diagnoses.map((diagnosis) => diagnosis.verdict),
    ['permission', 'model'],
  )
  assert.deepEqual(await reader.verify(), { nFrames: 9, headFileChecked: true })
})

test('a damaged trace rejects with FOURFOLD_TRACE_CORRUPT naming the offset', async () => {
  const dir = workspace()
  const file = writeTrace(dir)
  const bytes = fs.readFileSync(file)
  bytes[bytes.length - 10] ^= 0xff
  fs.writeFileSync(file, bytes)
  const error = await new TraceReader(file).verify().then(
    () => assert.fail('a flipped byte must not verify'),
    (error) => error,
  )
  assert.equal(error.code, codes.TRACE_CORRUPT)
  assert.equal(typeof error.offset, 'number')
  assert.ok(error.offset > 0 && error.offset < bytes.length)
  assert.match(error.message, /checksum/)

  const notATrace = path.join(dir, 'notes.txt')
  fs.writeFileSync(notATrace, 'just some text, long enough to hold a header')
  await assert.rejects(new TraceReader(notATrace).runs(), { code: codes.TRACE_CORRUPT, offset: 0 })
  await assert.rejects(new TraceReader(path.join(dir, 'missing.trace')).runs(), { code: codes.TRACE_ERROR })
  const policy = { file: path.join(dir, 'policy.toml') }
  assert.throws(() => new Fourfold({ policy, trace: {} }), { code: codes.INVALID_REQUEST })
  assert.throws(() => new Fourfold({ policy, trace: { file: path.join(dir, 'no', 'such', 'dir', 'x.trace') } }), {
    code: codes.TRACE_ERROR,
  })
})

test('reading a trace runs off the JS thread: the read waits on a pipe only this thread can fill', { timeout: 20_000 }, async () => {
  const dir = workspace()
  const bytes = fs.readFileSync(writeTrace(dir))
  const fifo = path.join(dir, 'pipe.trace')
  execFileSync('mkfifo', [fifo])
  // Were `runs()` to read on this thread, it would block here forever waiting for a writer.
  const runs = new TraceReader(fifo).runs()
  fs.writeFileSync(fifo, bytes)
  const [run] = await runs
  assert.equal(run.agentId, 'coder')
})
