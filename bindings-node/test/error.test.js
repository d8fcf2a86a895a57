// Errors: every code is exported, and a Rust panic reaches JS as FOURFOLD_PANIC, not a crash.
'use strict'

const assert = require('node:assert/strict')
const test = require('node:test')

const fourfold = require('../lib/index.js')
const { thrown } = require('./util.js')

test('the codes match the Python classes, and isFourfoldError tells them apart', () => {
  assert.deepEqual(Object.keys(fourfold.codes), [
    'ERROR',
    'POLICY_DENIED',
    'GATE_PENDING',
    'BUDGET_EXCEEDED',
    'STALE_CONTEXT',
    'TRACE_CORRUPT',
    'CONFIG_ERROR',
    'INVALID_POLICY',
    'APPROVAL_ERROR',
    'TRACE_ERROR',
    'CONTEXT_ERROR',
    'COST_ERROR',
    'UNKNOWN_MODEL',
    'MISSING_CONTROL',
    'STORE_ERROR',
    'PLUGIN_ERROR',
    'INVALID_REQUEST',
    'PANIC',
  ])
  const error = thrown(() => fourfold.countTokens('', 'x'))
  assert.ok(fourfold.isFourfoldError(error))
  assert.ok(fourfold.isFourfoldError(error, fourfold.codes.UNKNOWN_MODEL))
  assert.ok(!fourfold.isFourfoldError(error, fourfold.codes.POLICY_DENIED))
  assert.ok(!fourfold.isFourfoldError(new Error('plain')))
  assert.ok(!fourfold.isFourfoldError('FOURFOLD_ERROR'))
})

test('a panic in Rust is a FOURFOLD_PANIC error, on the JS thread and off it', async () => {
  const error = thrown(() => fourfold.__panicForTests())
  assert.equal(error.code, fourfold.codes.PANIC)
  assert.match(error.message, /panicked .*: a panic the tests asked for/)
  await assert.rejects(fourfold.__panicForTestsAsync(), { code: fourfold.codes.PANIC, message: /off the JS thread/ })
  // The addon still works after a panic.
  assert.equal(fourfold.countTokens('gpt-4o', 'hello world').tokens, 2)
})

test('the version is the core crate version', () => {
  assert.match(fourfold.version(), /^\d+\.\d+\.\d+/)
})
