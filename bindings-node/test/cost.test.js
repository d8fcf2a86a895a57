// CostMeter: counts equal js-tiktoken's, prices, budgets, reservations and their typed errors.
'use strict'

const assert = require('node:assert/strict')
const test = require('node:test')

const { getEncoding } = require('js-tiktoken')
const { CostMeter, codes, countChatTokens, countTokens, usageCounts } = require('../lib/index.js')
const { thrown } = require('./util.js')

const TEXTS = [
  'hello world',
  'Call `login(user, password)`; the two-argument form is gone.',
  'fn main() {\n    println!("{}", 1 + 2);\n}\n',
  'Grüße, 世界! 🌍 — naïve café',
  '   leading and trailing spaces   \n\n\n',
  '',
]

test('token counts equal js-tiktoken on o200k_base and cl100k_base', () => {
  for (const encoding of ['o200k_base', 'cl100k_base']) {
    const peer = getEncoding(encoding)
    for (const text of TEXTS) {
      const count = countTokens(encoding, text)
      assert.equal(count.tokens, peer.encode(text).length, `${encoding}: ${JSON.stringify(text)}`)
      assert.equal(count.encoding, encoding)
      assert.equal(count.estimated, false)
    }
  }
  assert.deepEqual(countTokens('gpt-4o', 'hello world'), { tokens: 2, encoding: 'o200k_base', estimated: false })
  assert.equal(countTokens('claude-sonnet-4-5', 'hello world').estimated, true)
  assert.equal(thrown(() => countTokens('', 'x')).code, codes.UNKNOWN_MODEL)
  assert.equal(thrown(() => countTokens('p50k_base', 'x')).code, codes.UNKNOWN_MODEL)
})

test('a chat is counted as the chat completions API bills it', () => {
  const messages = [
    { role: 'system', content: 'You are terse.' },
    { role: 'user', content: 'hello world' },
  ]
  const peer = getEncoding('o200k_base')
  // Three tokens per message, the texts, and three to prime the answer.
  const expected = messages.reduce((sum, m) => sum + 3 + peer.encode(m.role).length + peer.encode(m.content).length, 3)
  assert.equal(countChatTokens('gpt-4o', messages).tokens, expected)
})

test('a record is priced; an unknown model is a FOURFOLD_UNKNOWN_MODEL naming it', () => {
  const meter = new CostMeter()
  assert.equal(meter.currency, 'USD')
  const record = meter.record({ agent: 'coder', model: 'gpt-4o', counts: { input: 500, output: 120 } })
  assert.equal(record.micros, 2450) // 500 x $2.50/M + 120 x $10/M
  assert.equal(record.kind, 'spent')
  const unknown = thrown(() => meter.record({ agent: 'coder', model: 'no-such-model', counts: { input: 1 } }))
  assert.equal(unknown.code, 'FOURFOLD_UNKNOWN_MODEL')
  assert.equal(unknown.model, 'no-such-model')
  const zero = new CostMeter({ unknownModel: 'zero' })
  const warned = zero.record({ agent: 'coder', model: 'no-such-model', counts: { input: 1 } })
  assert.equal(warned.micros, 0)
  assert.match(warned.warning, /no-such-model/)
  const negative = thrown(() => meter.record({ agent: 'coder', model: 'gpt-4o', counts: { input: -1 } }))
  assert.equal(negative.code, codes.INVALID_REQUEST)
  const maybe = thrown(() => new CostMeter({ unknownModel: 'maybe' }))
  assert.equal(maybe.code, codes.INVALID_REQUEST)
  assert.match(maybe.message, /`unknownModel` is `error` or `zero`, not `maybe`/)
})

test('a hard budget refuses the reservation that would cross it, with the figures', () => {
  const meter = new CostMeter({ budgets: [{ scope: 'agent:coder', unit: 'tokens', hard: 1000 }] })
  const reservation = meter.reserve({ agent: 'coder', model: 'gpt-4o', counts: { input: 600, output: 200 } })
  const refused = thrown(() => meter.reserve({ agent: 'coder', model: 'gpt-4o', counts: { input: 300 } }))
  assert.equal(refused.code, codes.BUDGET_EXCEEDED)
  assert.deepEqual(
    [refused.budget, refused.unit, refused.limit, refused.spent, refused.reserved, refused.requested],
    ['agent:coder/tokens', 'tokens', 1000, 0, 800, 300],
  )
  const record = reservation.commit({ input: 500, output: 100 })
  assert.deepEqual([record.counts.input, record.counts.output], [500, 100])
  assert.equal(thrown(() => reservation.commit({ input: 1 })).code, codes.INVALID_REQUEST)
  // Another agent is not covered by the budget.
  meter.reserve({ agent: 'reviewer', model: 'gpt-4o', counts: { input: 5000 } }).release()
  assert.equal(thrown(() => meter.addBudget({ scope: 'team:x', unit: 'tokens', hard: 1 })).code, codes.INVALID_REQUEST)
  assert.equal(thrown(() => meter.addBudget({ scope: 'fleet', unit: 'tokens' })).code, codes.CONFIG_ERROR)
})

test('provider usage objects become token counts', () => {
  assert.deepEqual(
    usageCounts('openai', { prompt_tokens: 100, completion_tokens: 20, prompt_tokens_details: { cached_tokens: 40 } }),
    { input: 60, output: 20, cacheRead: 40, cacheWrite: 0, reasoning: 0 },
  )
  assert.equal(thrown(() => usageCounts('openai', { completion_tokens: 'x' })).code, codes.INVALID_REQUEST)
  assert.equal(thrown(() => usageCounts('mistral', {})).code, codes.INVALID_REQUEST)
})
