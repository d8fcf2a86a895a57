// The ESM entries give the same objects as the CommonJS ones.
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import test from 'node:test'

import fourfoldDefault, { Fourfold, codes, countTokens } from 'fourfold'
import { FourfoldCallbackHandler, FourfoldRetriever, guardTool } from 'fourfold/langchain'

const require = createRequire(import.meta.url)

test('import and require agree', () => {
  const common = require('fourfold')
  assert.equal(Fourfold, common.Fourfold)
  assert.equal(fourfoldDefault.Fourfold, common.Fourfold)
  assert.equal(codes.POLICY_DENIED, 'FOURFOLD_POLICY_DENIED')
  assert.equal(countTokens('gpt-4o', 'hello world').tokens, 2)
  assert.equal(FourfoldCallbackHandler, require('fourfold/langchain').FourfoldCallbackHandler)
  assert.equal(typeof guardTool, 'function')
  assert.equal(FourfoldRetriever, require('fourfold/langchain').FourfoldRetriever)
})
