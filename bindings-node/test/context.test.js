// ContextStore: versions, asks off the JS thread, ingest of a folder, and typed errors.
'use strict'

const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const test = require('node:test')

const { ContextStore, codes } = require('../lib/index.js')
const { workspace } = require('./util.js')

const AUTH_V1 = '# Auth\n\n## Logging in\n\nCall `login(user, password)`.\n\n## Logging out\n\nCall `logout()`.\n'
const AUTH_V2 = '# Auth\n\n## Logging in\n\nCall `login(credentials)`.\n\n## Logging out\n\nCall `logout()`.\n'

test('an old name in a query is searched as the new name the docs state', async () => {
  const store = new ContextStore()
  store.put('docs/models.md', '# Models\n\n## From objects\n\nSet from_attributes and call model_validate.\n')
  const query = 'load a model from an object, orm_mode fails'
  assert.deepEqual((await store.ask(query, { budgetTokens: 500 })).renames, [])
  store.put('docs/migration.md', '# Migration guide\n\n## Changes to config\n\n* `orm_mode` has been renamed to `from_attributes`.\n')
  const answer = await store.ask(query, { budgetTokens: 500 })
  assert.deepEqual(answer.renames, [{ old: 'orm_mode', new: 'from_attributes', pointer: 'docs/migration.md:3' }])
  assert.equal(answer.hits[0].key, 'docs/models.md')
})

test('documents are versioned and an ask serves the current canonical section', async () => {
  const store = new ContextStore({ archive: ['legacy/'] })
  const v1 = store.put('docs/auth.md', AUTH_V1)
  assert.deepEqual([v1.key, v1.version, v1.nSections], ['docs/auth.md', 1, 3])
  assert.equal(store.put('docs/auth.md', AUTH_V1).version, 1)
  store.put('legacy/auth.md', AUTH_V1)
  const v2 = store.put('docs/auth.md', AUTH_V2)
  assert.equal(v2.version, 2)
  assert.deepEqual(store.history('docs/auth.md').map((version) => version.version), [1, 2])
  // Old versions stay readable beside the current one.
  assert.equal(store.get('docs/auth.md').text, AUTH_V2)
  const first = store.get('docs/auth.md', 1)
  assert.equal(first.text, AUTH_V1)
  assert.equal(first.current, false)
  assert.equal(store.get('docs/auth.md', 3), null)
  assert.throws(() => store.get('docs/auth.md', -1), { code: 'FOURFOLD_INVALID_REQUEST' })
  assert.deepEqual(store.keys().sort(), ['docs/auth.md', 'legacy/auth.md'])

  const pending = store.ask('login', { budgetTokens: 400, withCopies: true })
  assert.ok(pending instanceof Promise)
  const answer = await pending
  assert.equal(answer.hits[0].key, 'docs/auth.md')
  assert.equal(answer.hits[0].version, 2)
  assert.match(answer.hits[0].text, /login\(credentials\)/)
  assert.deepEqual(answer.hits[0].headingPath, ['Auth', 'Logging in'])
  assert.ok(answer.copies.some((copy) => copy.key === 'legacy/auth.md' && copy.freshness === 'stale'))
  assert.ok(answer.tokensServed <= 400)
  assert.deepEqual(store.askSync('login', { budgetTokens: 400, withCopies: true }), answer)

  const document = store.get('docs/auth.md')
  assert.equal(document.current, true)
  assert.equal(document.sections.length, 3)
  assert.equal(store.getSection(answer.hits[0].sectionId).text, answer.hits[0].text)
  assert.equal(store.get('docs/none.md'), null)
  assert.equal(store.delete('legacy/auth.md'), true)
  assert.equal(store.delete('legacy/auth.md'), false)
})

test('compact folds the puts in and the answers stay the same', async () => {
  const store = new ContextStore()
  for (let n = 0; n < 40; n += 1) {
    store.put(`docs/auth-${n}.md`, AUTH_V1.replace('password', `password${n % 7}`))
  }
  assert.equal(store.delete('docs/auth-3.md'), true)
  const query = { budgetTokens: 2000, maxHits: 4 }
  const before = await store.ask('login password3', query)
  assert.equal(store.compact(), true)
  assert.equal(store.compact(), false)
  const after = await store.ask('login password3', query)
  assert.deepEqual(after.hits.map((hit) => hit.sectionId), before.hits.map((hit) => hit.sectionId))
  assert.equal(after.hits.length, 4)
  assert.ok(after.hits.every((hit) => hit.key !== 'docs/auth-3.md'))
})

test('bad input to the store is a typed error', async () => {
  const store = new ContextStore()
  assert.throws(() => store.put('', 'text'), { code: codes.INVALID_REQUEST })
  await assert.rejects(store.ask('q', { budgetTokens: -1 }), { code: codes.INVALID_REQUEST })
  await assert.rejects(store.ingestDir('/nonexistent/folder'), { code: codes.CONTEXT_ERROR })
  await assert.rejects(store.ingestDir(workspace(), { globs: ['[unclosed'] }), {
    code: codes.INVALID_REQUEST,
    message: /invalid glob/,
  })
  await assert.rejects(store.ingestDir(workspace(), { prefix: '../up' }), {
    code: codes.INVALID_REQUEST,
    message: /invalid key prefix `\.\.\/up`/,
  })
})

test('putMany puts in order off the JS thread, as a loop of puts would', async () => {
  const documents = Array.from({ length: 40 }, (_, n) => ({
    key: `docs/auth-${n}.md`,
    text: AUTH_V1.replace('# Auth', `# Auth ${n}`),
  }))
  const batched = new ContextStore()
  const looped = new ContextStore()
  const pending = batched.putMany(documents)
  assert.ok(pending instanceof Promise)
  const versions = await pending
  assert.deepEqual(versions.map((version) => version.key), documents.map((document) => document.key))
  for (const { key, text } of documents) looped.put(key, text)
  assert.deepEqual(batched.keys().sort(), looped.keys().sort())
  const asked = (store) => store.askSync('logging out', { budgetTokens: 400 }).hits.map((hit) => hit.key)
  assert.deepEqual(asked(batched), asked(looped))
  // A key put twice in one batch, then its text put again unchanged.
  const again = await batched.putMany([
    { key: 'docs/auth-1.md', text: AUTH_V2 },
    { key: 'docs/auth-1.md', text: AUTH_V1 },
  ])
  assert.deepEqual(again.map((version) => version.version), [2, 3])
  assert.equal((await batched.putMany([{ key: 'docs/auth-1.md', text: AUTH_V1 }]))[0].version, 3)

  await assert.rejects(batched.putMany([{ key: 'docs/new.md', text: AUTH_V1 }, { key: '', text: 'x' }]), {
    code: codes.INVALID_REQUEST,
  })
  assert.equal(batched.get('docs/new.md'), null)
  assert.throws(() => batched.putMany([{ key: 'docs/new.md' }]))
})

test('ingestDir keys the files under a prefix, and retires their old keys', async () => {
  const dir = workspace()
  fs.mkdirSync(path.join(dir, 'docs'))
  fs.writeFileSync(path.join(dir, 'docs', 'auth.md'), '# Auth\n\nCall `login(credentials)`.\n')
  const store = new ContextStore()
  await store.ingestDir(dir, { globs: ['docs/**'] })
  assert.deepEqual(store.keys(), ['docs/auth.md'])
  const moved = await store.ingestDir(dir, { globs: ['docs/**'], prefix: 'handbook' })
  assert.deepEqual([moved.deleted, store.keys()], [['docs/auth.md'], ['handbook/docs/auth.md']])
  const [hit] = (await store.ask('login credentials', { budgetTokens: 200 })).hits
  assert.match(hit.pointer, /^handbook\/docs\/auth\.md:/)
})

test('ingestDir calls onProgress after each file, in order, before it settles', async () => {
  const dir = workspace()
  fs.mkdirSync(path.join(dir, 'docs'))
  for (const name of ['a', 'b', 'c']) {
    fs.writeFileSync(path.join(dir, 'docs', `${name}.md`), `# ${name}\n\nAbout ${name}.\n`)
  }
  const store = new ContextStore()
  const seen = []
  const report = await store.ingestDir(dir, { globs: ['docs/**'], onProgress: (soFar) => seen.push(soFar.nFiles) })
  assert.deepEqual(seen, [1, 2, 3])
  assert.equal(report.nFiles, 3)

  fs.writeFileSync(path.join(dir, 'docs', 'd.md'), '# d\n\nAbout d.\n')
  let calls = 0
  const stop = () => {
    calls += 1
    throw new Error('stop showing progress')
  }
  await assert.rejects(store.ingestDir(dir, { globs: ['docs/**'], onProgress: stop }), /stop showing progress/)
  // Called once, and the ingest still went through to the end.
  assert.equal(calls, 1)
  assert.ok(store.keys().includes('docs/d.md'))
  await assert.rejects(store.ingestDir(dir, { onProgress: 'yes' }), { code: codes.INVALID_REQUEST })
})

test('ingestDir puts the matching files, re-indexes only what changed, and drops what is gone', async () => {
  const dir = workspace()
  fs.mkdirSync(path.join(dir, 'docs'))
  fs.writeFileSync(path.join(dir, 'docs', 'auth.md'), AUTH_V1)
  fs.writeFileSync(path.join(dir, 'docs', 'deploy.md'), '# Deploy\n\nRun `make deploy`.\n')
  fs.writeFileSync(path.join(dir, 'docs', 'logo.png'), Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 0, 0, 1]))
  const store = new ContextStore()
  const first = await store.ingestDir(dir, { globs: ['docs/**'] })
  assert.deepEqual([first.nChanged, first.nUnchanged], [2, 0])
  assert.deepEqual(first.skipped.map(([file]) => file), ['docs/logo.png'])
  fs.writeFileSync(path.join(dir, 'docs', 'auth.md'), AUTH_V2)
  fs.rmSync(path.join(dir, 'docs', 'deploy.md'))
  const second = await store.ingestDir(dir, { globs: ['docs/**'] })
  assert.deepEqual([second.nChanged, second.nUnchanged, second.deleted], [1, 0, ['docs/deploy.md']])
  assert.equal(store.get('docs/auth.md').version.version, 2)
})

const TOKENS = '# Tokens\n\n## Token rotation\n\nTokens rotate every hour; a token older than that is refused.\n'
const SESSIONS =
  '# Sessions\n\n## Session tokens\n\nA session token is signed with the vault key and checked on every request to the vault.\n'

test('a reranker, sync or async, orders what an ask serves; a failing one leaves the search order', async () => {
  const store = new ContextStore()
  store.put('docs/tokens.md', TOKENS)
  store.put('docs/sessions.md', SESSIONS)
  const plain = await store.ask('token rotation', { budgetTokens: 2000 })
  assert.deepEqual([plain.hits[0].key, plain.reranked, plain.rerankError], ['docs/tokens.md', false, null])
  const given = []
  const vaultFirst = (query, candidates) => {
    given.push({ query, candidates })
    return candidates.map((candidate) => candidate.text.split('vault').length - 1)
  }
  store.setReranker(vaultFirst, { depth: 10 })
  const answer = await store.ask('token rotation', { budgetTokens: 2000 })
  assert.deepEqual([answer.reranked, answer.hits[0].key, answer.hits[0].score], [true, 'docs/sessions.md', 2])
  const candidate = given.at(-1).candidates.find((c) => c.key === 'docs/sessions.md')
  assert.deepEqual(candidate.headingPath, ['Sessions', 'Session tokens'])
  assert.ok(candidate.score > 0 && candidate.text.includes('vault key'))
  assert.equal(given.at(-1).query, 'token rotation')
  // An async reranker (a hosted rerank API) works the same way.
  store.setReranker(async (query, candidates) => {
    await new Promise((resolve) => setTimeout(resolve, 5))
    return vaultFirst(query, candidates)
  })
  assert.equal((await store.ask('token rotation', { budgetTokens: 2000 })).hits[0].key, 'docs/sessions.md')
  // Failures: a throw, a rejected Promise, not numbers; askSync cannot wait for a JS reranker.
  for (const [broken, why] of [
    [() => { throw new Error('the rerank API is down') }, /the rerank API is down/],
    [async () => { throw new Error('timed out') }, /timed out/],
    [() => ['high'], /not understood/],
  ]) {
    store.setReranker(broken)
    const failed = await store.ask('token rotation', { budgetTokens: 2000 })
    assert.equal(failed.reranked, false)
    assert.match(failed.rerankError, why)
    assert.deepEqual(failed.hits.map((hit) => hit.key), plain.hits.map((hit) => hit.key))
  }
  // A reranker that does not answer in time (a hosted API that hangs) gives up its ask, not
  // the thread the ask ran on; one that answers after that changes nothing.
  for (const late of [() => new Promise(() => {}), () => new Promise((resolve) => setTimeout(() => resolve([1, 2]), 150))]) {
    store.setReranker(late, { timeoutMs: 50 })
    const timedOut = await store.ask('token rotation', { budgetTokens: 2000 })
    assert.equal(timedOut.reranked, false)
    assert.match(timedOut.rerankError, /did not answer within 50 ms/)
    assert.deepEqual(timedOut.hits.map((hit) => hit.key), plain.hits.map((hit) => hit.key))
  }
  await new Promise((resolve) => setTimeout(resolve, 200))
  store.setReranker(vaultFirst, { timeoutMs: 5000 })
  assert.equal((await store.ask('token rotation', { budgetTokens: 2000 })).hits[0].key, 'docs/sessions.md')
  for (const timeoutMs of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
    assert.throws(() => store.setReranker(vaultFirst, { timeoutMs }), { code: codes.INVALID_REQUEST, message: /timeoutMs/ })
  }
  store.setReranker(vaultFirst)
  const sync = store.askSync('token rotation', { budgetTokens: 2000 })
  assert.match(sync.rerankError, /askSync/)
  assert.equal(sync.hits[0].key, 'docs/tokens.md')
  store.setReranker(null)
  assert.deepEqual(await store.ask('token rotation', { budgetTokens: 2000 }), plain)
  assert.throws(() => store.setReranker('cross-encoder'), { code: codes.INVALID_REQUEST })
  assert.throws(() => store.setReranker(vaultFirst, { depth: 0 }), { code: codes.INVALID_REQUEST })
})
