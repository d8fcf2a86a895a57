// ContextStore beyond one process's memory: snapshots (open, save, a damaged snapshot),
// changedSince, record, and the ChangeFeed of subscribe, waited on off the JS thread.
'use strict'

const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const test = require('node:test')

const { ChangeFeed, ContextStore, Fourfold, codes } = require('../lib/index.js')
const { workspace, thrown } = require('./util.js')

const AUTH_V1 = '# Auth\n\n## Logging in\n\nCall `login(user, password)`.\n\n## Logging out\n\nCall `logout()`.\n'
const AUTH_V2 = '# Auth\n\n## Logging in\n\nCall `login(credentials)`.\n\n## Logging out\n\nCall `logout()`.\n'

/** The section of `store`'s `key` under the heading `heading`. */
function section(store, key, heading) {
  return store.get(key).sections.find((candidate) => candidate.headingPath.at(-1) === heading)
}

test('a saved store opens again with its documents, and asks serve them', async () => {
  const dir = path.join(workspace(), 'context')
  const store = ContextStore.open(dir, { archive: ['legacy/'] })
  assert.deepEqual(store.keys(), [])
  store.put('docs/auth.md', AUTH_V1)
  store.put('docs/auth.md', AUTH_V2)
  store.put('legacy/auth.md', AUTH_V2)
  const info = store.save()
  assert.equal(info.nDocuments, 2)
  assert.ok(info.nBytes > 0)

  const reopened = ContextStore.open(dir, { archive: ['legacy/'] })
  assert.deepEqual(reopened.keys().sort(), ['docs/auth.md', 'legacy/auth.md'])
  assert.deepEqual(reopened.history('docs/auth.md').map((version) => version.version), [1, 2])
  const answer = await reopened.ask('login', { budgetTokens: 400, withCopies: true })
  assert.equal(answer.hits[0].key, 'docs/auth.md')
  assert.match(answer.hits[0].text, /login\(credentials\)/)
  assert.ok(answer.copies.some((copy) => copy.key === 'legacy/auth.md' && copy.freshness === 'stale'))

  reopened.put('docs/deploy.md', '# Deploy\n\nRun `make deploy`.\n')
  assert.equal(reopened.save().nDocuments, 3)
  assert.equal(ContextStore.open(dir).get('docs/deploy.md').version.version, 1)
})

test('save on a store made in memory is a FOURFOLD_CONTEXT_ERROR', () => {
  const store = new ContextStore()
  store.put('docs/auth.md', AUTH_V1)
  const error = thrown(() => store.save())
  assert.equal(error.code, codes.CONTEXT_ERROR)
  assert.match(error.message, /nowhere to save/)
})

test('a damaged snapshot makes open throw, and changes nothing on disk', () => {
  const dir = workspace()
  const store = ContextStore.open(dir)
  store.put('docs/auth.md', AUTH_V1)
  store.save()
  const snapshots = fs
    .readdirSync(dir, { recursive: true })
    .filter((file) => path.basename(file) === 'snapshot')
  assert.equal(snapshots.length, 1, `the files of a saved store: ${fs.readdirSync(dir, { recursive: true })}`)
  const snapshot = path.join(dir, snapshots[0])
  const garbage = Buffer.from('not a snapshot at all, just some garbage bytes '.repeat(8))
  fs.writeFileSync(snapshot, garbage)

  const error = thrown(() => ContextStore.open(dir))
  assert.equal(error.code, codes.CONTEXT_ERROR)
  assert.match(error.message, /unusable/)
  assert.deepEqual(fs.readFileSync(snapshot), garbage)

  // A snapshot cut short is refused as well.
  fs.writeFileSync(snapshot, fs.readFileSync(snapshot).subarray(0, 10))
  assert.equal(thrown(() => ContextStore.open(dir)).code, codes.CONTEXT_ERROR)
})

test('open with previous: true falls back to the snapshot saved before a damaged one', () => {
  const dir = workspace()
  const store = ContextStore.open(dir)
  store.put('docs/auth.md', AUTH_V1)
  store.save()
  store.put('docs/auth.md', AUTH_V2)
  store.save()
  const snapshot = fs
    .readdirSync(dir, { recursive: true })
    .find((file) => path.basename(file) === 'snapshot')
  fs.truncateSync(path.join(dir, snapshot), 100)
  assert.equal(thrown(() => ContextStore.open(dir)).code, codes.CONTEXT_ERROR)
  // With the journal of the changes since, the snapshot before gives the latest state.
  const previous = ContextStore.open(dir, { previous: true })
  assert.equal(previous.get('docs/auth.md').version.version, 2)
  assert.equal(previous.history('docs/auth.md').length, 2)
})

test('changes outlive the store without a save: each is journaled first', () => {
  const dir = workspace()
  const store = ContextStore.open(dir)
  store.put('docs/auth.md', AUTH_V1)
  store.record('deploys', 'Deploys run from the release branch only.')
  const files = fs.readdirSync(dir, { recursive: true }).map((file) => path.basename(file))
  assert.equal(files.filter((file) => file.startsWith('journal-')).length, 2)
  assert.ok(!files.includes('snapshot'))
  const again = ContextStore.open(dir)
  assert.deepEqual(again.keys(), ['docs/auth.md', 'records/deploys.md'])
  assert.equal(again.get('docs/auth.md').text, AUTH_V1)
})

test('open in a folder that cannot be made is a FOURFOLD_STORE_ERROR', () => {
  const file = path.join(workspace(), 'policy.toml')
  assert.equal(thrown(() => ContextStore.open(path.join(file, 'context'))).code, codes.STORE_ERROR)
})

test('refresh takes in what another store wrote to the same folder', () => {
  const dir = workspace()
  const server = ContextStore.open(dir)
  const other = ContextStore.open(dir)
  assert.equal(server.refresh(), false)
  other.put('docs/auth.md', AUTH_V1)
  assert.equal(server.get('docs/auth.md'), null)
  assert.equal(server.refresh(), true)
  assert.equal(server.get('docs/auth.md').text, AUTH_V1)
  assert.equal(server.refresh(), false)
  assert.equal(new ContextStore().refresh(), false)
})

test('a Fourfold whose config names a snapshot folder saves its context there', () => {
  const dir = workspace('[policy]\nfile = "policy.toml"\n\n[context]\nsnapshot = "snapshots"\n')
  const fourfold = Fourfold.fromConfig(path.join(dir, 'fourfold.toml'))
  fourfold.context.put('docs/auth.md', AUTH_V1)
  assert.equal(fourfold.context.save().nDocuments, 1)
  assert.equal(ContextStore.open(path.join(dir, 'snapshots')).get('docs/auth.md').text, AUTH_V1)

  const inMemory = new Fourfold({ policy: { file: path.join(dir, 'policy.toml') }, context: {} })
  assert.equal(thrown(() => inMemory.context.save()).code, codes.CONTEXT_ERROR)
})

test('changedSince reports the sections read that changed, and only those', async () => {
  const store = new ContextStore()
  store.put('docs/auth.md', AUTH_V1)
  const [hit] = (await store.ask('login password', { budgetTokens: 400, maxHits: 1 })).hits
  assert.deepEqual(hit.headingPath, ['Auth', 'Logging in'])
  const loggingOut = section(store, 'docs/auth.md', 'Logging out')
  const plain = { key: hit.key, sectionId: hit.sectionId, version: hit.version }
  assert.deepEqual(store.changedSince([hit, loggingOut, plain]), [])

  store.put('docs/auth.md', AUTH_V2)
  const changes = store.changedSince([hit, loggingOut, plain])
  assert.equal(changes.length, 2)
  for (const change of changes) {
    assert.deepEqual([change.key, change.sectionId, change.version], ['docs/auth.md', hit.sectionId, 1])
    assert.equal(change.currentVersion, 2)
    assert.equal(change.currentPointer, hit.pointer)
    assert.equal(typeof change.reason, 'string')
  }
  assert.deepEqual(store.changedSince([loggingOut]), [])

  store.delete('docs/auth.md')
  const [gone] = store.changedSince([loggingOut])
  assert.equal(gone.sectionId, loggingOut.id)
  assert.equal(gone.currentVersion, null)
})

test('changedSince throws FOURFOLD_INVALID_REQUEST on reads it cannot use', () => {
  const store = new ContextStore()
  store.put('docs/auth.md', AUTH_V1)
  const { id, key } = section(store, 'docs/auth.md', 'Logging in')
  for (const reads of [
    undefined,
    'docs/auth.md',
    { key, sectionId: id, version: 1 },
    [null],
    [{ sectionId: id, version: 1 }],
    [{ key, version: 1 }],
    [{ key, sectionId: 7, version: 1 }],
    [{ key: 1, sectionId: id, version: 1 }],
    [{ key, sectionId: id }],
    [{ key, sectionId: id, version: -1 }],
    [{ key, sectionId: id, version: 1.5 }],
    [{ key, sectionId: id, version: '1' }],
    [{ key, sectionId: id, version: Number.NaN }],
    [{ key, sectionId: id, version: 2 ** 60 }],
  ]) {
    const error = thrown(() => store.changedSince(reads))
    assert.equal(error.code, codes.INVALID_REQUEST, `${JSON.stringify(reads)}: ${error.message}`)
    assert.match(error.message, /changedSince/)
  }
  assert.deepEqual(store.changedSince([{ key, id, version: 1 }]), [])
})

test('record writes a finding that asks then serve', async () => {
  const store = new ContextStore()
  const version = store.record('Deploy incident', 'Roll back with `make rollback` when the canary fails.')
  assert.deepEqual([version.key, version.version], ['records/deploy-incident.md', 1])
  const answer = await store.ask('rollback canary', { budgetTokens: 400 })
  assert.equal(answer.hits[0].key, 'records/deploy-incident.md')
  assert.match(answer.hits[0].text, /make rollback/)
  assert.equal(store.record('Deploy incident', 'Page the on-call first.').version, 2)
})

test('a ChangeFeed gives each change by next and by drain', async () => {
  const store = new ContextStore()
  store.put('docs/auth.md', AUTH_V1)
  const feed = store.subscribe()
  assert.ok(feed instanceof ChangeFeed)
  assert.deepEqual(feed.drain(), [])

  // Waited for off the JS thread: the put below runs while next() waits.
  const pending = feed.next(10_000)
  assert.ok(pending instanceof Promise)
  store.put('docs/auth.md', AUTH_V2)
  const loggingIn = section(store, 'docs/auth.md', 'Logging in').id
  assert.deepEqual(await pending, {
    key: 'docs/auth.md',
    version: 2,
    changedSections: [loggingIn],
    removedSections: [],
  })

  store.put('docs/deploy.md', '# Deploy\n\nRun `make deploy`.\n')
  assert.equal((await feed.next(10_000)).key, 'docs/deploy.md')

  store.put('docs/auth.md', AUTH_V1)
  store.delete('docs/deploy.md')
  const drained = feed.drain()
  assert.deepEqual(drained.map((change) => [change.key, change.version]), [
    ['docs/auth.md', 3],
    ['docs/deploy.md', null],
  ])
  assert.equal(drained[1].removedSections.length, 1)
  assert.deepEqual(feed.drain(), [])
})

test('next resolves null when no change comes in time, and rejects a bad timeout', async () => {
  const store = new ContextStore()
  const feed = store.subscribe()
  assert.equal(await feed.next(50), null)
  assert.equal(await feed.next(0), null)
  for (const timeoutMs of [-1, Number.NaN, Number.POSITIVE_INFINITY]) {
    await assert.rejects(feed.next(timeoutMs), { code: codes.INVALID_REQUEST })
  }
  store.record('notes', 'a change after all')
  assert.equal((await feed.next(10_000)).key, 'records/notes.md')
})

test('close ends a wait without a timeout, and a closed feed gives nothing', async () => {
  const store = new ContextStore()
  const feed = store.subscribe()
  const waiting = feed.next()
  setTimeout(() => feed.close(), 100)
  assert.equal(await waiting, null)
  assert.equal(feed.closed, true)
  store.record('notes', 'a change nobody listens to')
  assert.equal(await feed.next(), null)
  assert.deepEqual(feed.drain(), [])
})

test('a feed that falls behind counts what it missed', () => {
  const store = new ContextStore()
  const feed = store.subscribe()
  assert.equal(feed.missed, 0)
  for (let n = 0; n < 1030; n++) store.put('docs/count.md', `# Count\n\n${n}\n`)
  assert.equal(feed.missed, 6)
  const versions = feed.drain().map((change) => change.version)
  assert.deepEqual(versions, Array.from({ length: 1024 }, (_, at) => at + 1))
  store.put('docs/count.md', '# Count\n\nagain\n')
  assert.deepEqual(feed.drain().map((change) => change.version), [1031])
  assert.equal(feed.missed, 6)
})

test('for await iterates a feed until it is closed', async () => {
  const store = new ContextStore()
  const feed = store.subscribe()
  const versions = []
  const listening = (async () => {
    for await (const change of feed) versions.push(change.version)
  })()
  store.put('docs/auth.md', AUTH_V1)
  store.put('docs/auth.md', AUTH_V2)
  while (versions.length < 2) await new Promise((resolve) => setTimeout(resolve, 10))
  feed.close()
  await listening
  assert.deepEqual(versions, [1, 2])
})

test('waiting feeds do not hold up asks: they wait on threads of their own', async () => {
  const store = new ContextStore()
  store.put('docs/auth.md', AUTH_V1)
  // More waits than libuv's pool has threads (four by default).
  const feeds = Array.from({ length: 6 }, () => store.subscribe())
  const waits = feeds.map((feed) => feed.next())
  let timer
  const tooLate = new Promise((resolve) => {
    timer = setTimeout(() => resolve('timed out'), 5000)
  })
  const answer = await Promise.race([store.ask('login', { budgetTokens: 200 }), tooLate])
  clearTimeout(timer)
  assert.notEqual(answer, 'timed out', 'an ask waited behind the feeds')
  assert.equal(answer.hits[0].key, 'docs/auth.md')
  for (const feed of feeds) feed.close()
  assert.deepEqual(await Promise.all(waits), feeds.map(() => null))
})
