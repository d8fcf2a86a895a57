// The latency `fourfold mcp gateway` adds to an MCP tool call: the same `read_text_file` call to the
// reference filesystem server (@modelcontextprotocol/server-filesystem), straight and through the
// gateway (release build), from the official MCP TypeScript SDK client, in one run, interleaved.
// Prints p50 and p90 of each and the difference of the p50s.
//
// Usage: node benches/node/mcp-gateway-bench.js [--calls N] [--binary target/release/fourfold]
'use strict'

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const bindings = path.join(__dirname, '..', '..', 'bindings-node')
const { Client } = require(path.join(bindings, 'node_modules/@modelcontextprotocol/sdk/dist/cjs/client/index.js'))
const { StdioClientTransport } = require(path.join(bindings, 'node_modules/@modelcontextprotocol/sdk/dist/cjs/client/stdio.js'))
const UPSTREAM = path.join(bindings, 'node_modules/@modelcontextprotocol/server-filesystem/dist/index.js')

const args = process.argv.slice(2)
const option = (name, fallback) => {
  const at = args.indexOf(name)
  return at >= 0 ? args[at + 1] : fallback
}
const N_CALLS = Number(option('--calls', '2000'))
const BINARY = option('--binary', path.join(__dirname, '..', '..', 'target', 'release', 'fourfold'))

function quantile(sorted, q) {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]
}

async function connect(command, commandArgs) {
  const client = new Client({ name: 'fourfold-bench', version: '1.0.0' })
  await client.connect(new StdioClientTransport({ command, args: commandArgs }))
  return client
}

async function main() {
  const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'fourfold-gateway-bench-')))
  const files = path.join(dir, 'files')
  fs.mkdirSync(files)
  fs.writeFileSync(path.join(files, 'notes.md'), '# Notes\n\n' + 'Ship on Friday.\n'.repeat(20))
  fs.writeFileSync(path.join(dir, 'policy.toml'), '[[rule]]\nid = "reads"\neffect = "allow"\ntools = [{ name = "read_text_file" }]\n')
  fs.writeFileSync(path.join(dir, 'fourfold.toml'), '[policy]\nfile = "policy.toml"\n[trace]\nfile = "gateway.trace"\n')
  const direct = await connect(process.execPath, [UPSTREAM, files])
  const gated = await connect(BINARY, ['mcp', 'gateway', '--config', path.join(dir, 'fourfold.toml'), '--', process.execPath, UPSTREAM, files])
  const call = { name: 'read_text_file', arguments: { path: path.join(files, 'notes.md') } }
  const times = { direct: [], gateway: [] }
  for (let idx = 0; idx < 100; idx++) {
    await direct.callTool(call)
    await gated.callTool(call)
  }
  for (let idx = 0; idx < N_CALLS; idx++) {
    for (const [name, client] of idx % 2 === 0 ? [['direct', direct], ['gateway', gated]] : [['gateway', gated], ['direct', direct]]) {
      const started = process.hrtime.bigint()
      const result = await client.callTool(call)
      times[name].push(Number(process.hrtime.bigint() - started) / 1e6)
      if (result.isError) throw new Error(`${name}: ${JSON.stringify(result.content)}`)
    }
  }
  await direct.close()
  await gated.close()
  for (const list of Object.values(times)) list.sort((a, b) => a - b)
  const p50 = (name) => quantile(times[name], 0.5)
  const p90 = (name) => quantile(times[name], 0.9)
  console.log(`calls: ${N_CALLS} each, interleaved, after 100 warm-up calls each`)
  console.log(`direct   p50 ${p50('direct').toFixed(3)} ms   p90 ${p90('direct').toFixed(3)} ms`)
  console.log(`gateway  p50 ${p50('gateway').toFixed(3)} ms   p90 ${p90('gateway').toFixed(3)} ms`)
  console.log(`added by the gateway at p50: ${(p50('gateway') - p50('direct')).toFixed(3)} ms`)
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
