// `fourfold mcp gateway` in front of a real MCP server nobody here wrote (the reference filesystem
// server, @modelcontextprotocol/server-filesystem from npm), driven by the official MCP TypeScript
// SDK as the client: the upstream's tools offered unchanged, an allowed read passed through, a read
// of a denied path refused with the rule, a gated write failing with its approval id, and the
// trace holding every call. The gateway is the CLI built by `cargo test` (target/debug/fourfold,
// or FOURFOLD_BIN).
'use strict'

const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const test = require('node:test')

const { Client } = require('@modelcontextprotocol/sdk/client/index.js')
const { StdioClientTransport } = require('@modelcontextprotocol/sdk/client/stdio.js')
const { TraceReader } = require('../lib/index.js')

const REPO = path.join(__dirname, '..', '..')
const BINARY = process.env.FOURFOLD_BIN ?? path.join(REPO, 'target', 'debug', 'fourfold')
const UPSTREAM = require.resolve('@modelcontextprotocol/server-filesystem/dist/index.js')

const POLICY = `
[[rule]]
id = "reads"
effect = "allow"
agents = ["mcp-client"]
tools = [{ name = "read_text_file" }, { name = "list_directory" }, { name = "list_allowed_directories" }]

[[rule]]
id = "no-secrets"
effect = "deny"
tools = [{ name = "read_text_file", glob = { path = "**/.env" } }]

[[rule]]
id = "writes-reviewed"
effect = "gate"
gates = ["human-review"]
agents = ["mcp-client"]
tools = [{ name = "write_file" }]
`

function text(result) {
  return result.content.map((part) => part.text).join('\n')
}

test('the gateway governs every tool call of a real upstream MCP server', async () => {
  assert.ok(fs.existsSync(BINARY), `build the CLI first (cargo build -p fourfold-cli): ${BINARY}`)
  const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'fourfold-gateway-')))
  const files = path.join(dir, 'files')
  fs.mkdirSync(files)
  fs.writeFileSync(path.join(files, 'notes.md'), '# Notes\n\nShip on Friday.\n')
  fs.writeFileSync(path.join(files, '.env'), 'API_KEY=sk-live-secret\n')
  fs.writeFileSync(path.join(dir, 'policy.toml'), POLICY)
  fs.writeFileSync(path.join(dir, 'fourfold.toml'), '[policy]\nfile = "policy.toml"\n[trace]\nfile = "gateway.trace"\n')

  const transport = new StdioClientTransport({
    command: BINARY,
    args: ['mcp', 'gateway', '--config', path.join(dir, 'fourfold.toml'), '--', process.execPath, UPSTREAM, files],
  })
  const client = new Client({ name: 'fourfold-test', version: '1.0.0' })
  await client.connect(transport)
  try {
    const tools = (await client.listTools()).tools.map((tool) => tool.name)
    assert.ok(tools.includes('read_text_file') && tools.includes('write_file'), tools.join(', '))

    const allowed = await client.callTool({ name: 'read_text_file', arguments: { path: path.join(files, 'notes.md') } })
    assert.ok(!allowed.isError, text(allowed))
    assert.match(text(allowed), /Ship on Friday/)

    const denied = await client.callTool({ name: 'read_text_file', arguments: { path: path.join(files, '.env') } })
    assert.equal(denied.isError, true)
    assert.match(text(denied), /no-secrets/)
    assert.doesNotMatch(text(denied), /sk-live-secret/)

    const held = await client.callTool({
      name: 'write_file',
      arguments: { path: path.join(files, 'notes.md'), content: 'overwritten' },
    })
    assert.equal(held.isError, true)
    assert.match(text(held), /approval `ap-[0-9a-f]+` is pending/)
    assert.equal(fs.readFileSync(path.join(files, 'notes.md'), 'utf8'), '# Notes\n\nShip on Friday.\n')

    const unlisted = await client.callTool({ name: 'move_file', arguments: { source: 'a', destination: 'b' } })
    assert.equal(unlisted.isError, true)
    assert.match(text(unlisted), /no rule allows it/)
  } finally {
    await client.close()
  }

  // The trace holds each call: the gate's answer and the action, with the upstream's latency.
  const [run] = await new TraceReader(path.join(dir, 'gateway.trace')).runs()
  const events = run.spans.flatMap((span) => span.events).concat(run.looseEvents).sort((a, b) => a.seq - b.seq)
  const gates = events.filter((event) => event.kind === 'gate').map((event) => event.gate.outcome)
  assert.deepEqual(gates, ['allowed', 'denied', 'pending', 'denied'])
  const actions = events.filter((event) => event.kind === 'action').map((event) => event.action)
  assert.equal(actions.length, 4)
  assert.equal(actions[0].tool, 'read_text_file')
  assert.ok(actions[0].durationNs > 0)
  assert.equal(actions[0].error, null)
  assert.match(actions[1].error, /no-secrets/)
})
