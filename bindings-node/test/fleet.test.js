// The fleet from Node: two Fourfolds built from one fourfold.toml with a PostgreSQL [store] and
// shared documents. The server comes from scripts/with-postgres.sh (FOURFOLD_TEST_POSTGRES);
// without one the test says why it is skipped, except under CI=true, where it must run.
'use strict'

const assert = require('node:assert/strict')
const { execFileSync } = require('node:child_process')
const crypto = require('node:crypto')
const fs = require('node:fs')
const path = require('node:path')
const test = require('node:test')

const { Fourfold, SharedDocuments, codes } = require('../lib/index.js')
const { thrown, workspace } = require('./util.js')

const SERVER = process.env.FOURFOLD_TEST_POSTGRES ?? ''

/** Connection settings of a new, empty database on the test server, or null to skip. */
function freshDatabase(t) {
  if (!SERVER) {
    assert.notEqual(process.env.CI, 'true', 'CI must run the PostgreSQL tests: run them under scripts/with-postgres.sh')
    t.skip('no PostgreSQL server (run the tests under scripts/with-postgres.sh)')
    return null
  }
  const name = `ff_node_${crypto.randomBytes(6).toString('hex')}`
  execFileSync('psql', [`${SERVER} dbname=postgres`, '-q', '-c', `CREATE DATABASE ${name}`])
  return `${SERVER} dbname=${name}`
}

test('a document put by one process is served by the other', async (t) => {
  const settings = freshDatabase(t)
  if (settings === null) return
  const dir = workspace(`[policy]\nfile = "policy.toml"\n[store]\nurl = "${settings}"\n[context]\nshared = true\n`)
  const config = path.join(dir, 'fourfold.toml')
  const writer = Fourfold.fromConfig(config)
  const reader = Fourfold.fromConfig(config)
  assert.ok(writer.sharedDocuments instanceof SharedDocuments)
  const text = '# Widgets\n\nA widget is configured with widget.toml.\n'
  const version = writer.sharedDocuments.put('docs/widgets.md', text)
  assert.deepEqual([version.key, version.version], ['docs/widgets.md', 1])
  // The reader applies the fleet's log within a second; refresh applies it now.
  reader.sharedDocuments.refresh()
  const answer = await reader.context.ask('how is a widget configured', { budgetTokens: 300 })
  assert.equal(answer.hits[0].key, 'docs/widgets.md')
  // Both number the versions alike.
  const next = '# Widgets\n\nWidgets read widgets.yaml now.\n'
  assert.equal(reader.sharedDocuments.put('docs/widgets.md', next).version, 2)
  writer.sharedDocuments.refresh()
  assert.equal(writer.sharedDocuments.context.get('docs/widgets.md').text, next)
  assert.equal(writer.sharedDocuments.delete('docs/widgets.md'), true)
  reader.sharedDocuments.refresh()
  assert.equal(reader.context.get('docs/widgets.md'), null)
  assert.equal(thrown(() => writer.sharedDocuments.put('', 'an empty key is refused')).code, codes.INVALID_REQUEST)
  // A batch lands for both processes in one append, numbered as that many puts.
  const versions = await writer.sharedDocuments.putMany([
    { key: 'docs/a.md', text: '# A\n\nAlpha pages.\n' },
    { key: 'docs/b.md', text: '# B\n\nBeta pages.\n' },
    { key: 'docs/a.md', text: '# A\n\nAlpha, again.\n' },
  ])
  assert.deepEqual(versions.map((v) => [v.key, v.version]), [['docs/a.md', 1], ['docs/b.md', 1], ['docs/a.md', 2]])
  reader.sharedDocuments.refresh()
  assert.equal(reader.context.get('docs/a.md').text, '# A\n\nAlpha, again.\n')
  await assert.rejects(
    writer.sharedDocuments.putMany([{ key: 'docs/c.md', text: '# C\n' }, { key: '', text: 'refused' }]),
    (error) => error.code === codes.INVALID_REQUEST,
  )
  assert.equal(reader.sharedDocuments.refresh(), 0)
  assert.equal(writer.sharedDocuments.context.get('docs/c.md'), null)
  // A finding recorded by one process is appended to by the other, for both.
  assert.equal(writer.sharedDocuments.record('widgets', 'Widgets need a restart after a config change.').version, 1)
  assert.equal(reader.sharedDocuments.record('widgets', 'A restart takes about a minute.').version, 2)
  writer.sharedDocuments.refresh()
  const recorded = writer.context.get('records/widgets.md').text
  assert.match(recorded, /restart after/)
  assert.match(recorded, /about a minute/)
  // A folder published by one process is served by the other, and a removed file is retired.
  const docs = path.join(dir, 'docs')
  fs.mkdirSync(docs)
  fs.writeFileSync(path.join(docs, 'deploy.md'), '# Deploy\n\nRun `make deploy` from main.\n')
  fs.writeFileSync(path.join(docs, 'old.md'), '# Old\n\nSoon gone.\n')
  assert.equal((await writer.sharedDocuments.ingestDir(docs)).nChanged, 2)
  reader.sharedDocuments.refresh()
  assert.equal((await reader.context.ask('how do I deploy', { budgetTokens: 300 })).hits[0].key, 'deploy.md')
  fs.unlinkSync(path.join(docs, 'old.md'))
  assert.deepEqual((await writer.sharedDocuments.ingestDir(docs)).deleted, ['old.md'])
  reader.sharedDocuments.refresh()
  assert.equal(reader.context.get('old.md'), null)
  // A Fourfold whose context is its own has no shared documents.
  fs.writeFileSync(path.join(dir, 'local.toml'), '[policy]\nfile = "policy.toml"\n[context]\n')
  assert.equal(Fourfold.fromConfig(path.join(dir, 'local.toml')).sharedDocuments, null)
})
