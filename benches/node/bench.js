// Node benches of the `fourfold` addon, one process, one thread:
// - `session.guard` per call from JS (an allowed read, and a denied one caught), with and
//   without a tracer, beside `policy.check`, a no-op native call (`version()`) for the FFI floor,
//   and the same guards repeated inside Rust (the core's share), so that the binding's overhead is
//   the difference of two figures of the same run; then the allowed guard from JS and in Rust
//   again, interleaved round by round, so that both see the same load;
// - token counting throughput of `countTokens` against js-tiktoken (the peer a Node user would
//   pick), on the same texts in the same run, with the counts checked equal first.
// Prints CSV rows to stdout and a readable table to stderr.
//
// Usage: node benches/node/bench.js [--quick]
'use strict'

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const ROOT = path.resolve(__dirname, '..', '..')
const { Fourfold, Policy, countTokens, version } = require(path.join(ROOT, 'bindings-node', 'lib', 'index.js'))
const { getEncoding } = require(path.join(ROOT, 'bindings-node', 'node_modules', 'js-tiktoken'))
const { POLICY, REQUEST: request, DENIED_REQUEST: deniedRequest, median } = require('./guard-fixture.js')

const QUICK = process.argv.includes('--quick')
const rows = []

/** The median over `samples` batches of `batch` calls of the mean time per call, in ns. */
function perCall(body, { batch = 20_000, samples }) {
  for (let i = 0; i < batch * 2; i++) body()
  const means = []
  for (let sample = 0; sample < samples; sample++) {
    const started = process.hrtime.bigint()
    for (let i = 0; i < batch; i++) body()
    means.push(Number(process.hrtime.bigint() - started) / batch)
  }
  return median(means)
}

/** The fastest of the runs of `body` that fit in `minSeconds` (at least 3), in ns. */
function fastest(body, minSeconds = QUICK ? 0.2 : 2) {
  const started = process.hrtime.bigint()
  let best = Infinity
  let runs = 0
  while (runs < 3 || Number(process.hrtime.bigint() - started) / 1e9 < minSeconds) {
    const runStarted = process.hrtime.bigint()
    body()
    best = Math.min(best, Number(process.hrtime.bigint() - runStarted))
    runs += 1
  }
  return best
}

function guardBenches() {
  const plain = new Fourfold({ policy: { toml: POLICY } }).session('coder', 'T-1')
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fourfold-bench-'))
  const traced = new Fourfold({ policy: { toml: POLICY }, trace: { file: path.join(dir, 'bench.trace') } })
  const tracedSession = traced.session('coder', 'T-1')
  const policy = Policy.fromToml(POLICY)
  const checkRequest = { agent: 'coder', ...request }
  const guardDenied = () => {
    try {
      plain.guard(deniedRequest)
    } catch (error) {
      return error
    }
    throw new Error('the denied request was allowed')
  }
  const cases = [
    ['ffi_floor_version', () => version()],
    ['policy_check', () => policy.check(checkRequest)],
    ['session_guard', () => plain.guard(request)],
    ['session_guard_denied', guardDenied],
    ['session_guard_traced', () => tracedSession.guard(request)],
  ]
  const samples = QUICK ? 5 : 31
  const batch = 20_000
  const results = {}
  for (const [name, body] of cases) {
    results[name] = perCall(body, { batch, samples })
    if (name === 'session_guard_traced') traced.tracer.flush()
  }
  // The core's share: the same guard, `batch` times in a loop in Rust, as many samples.
  const inRust = (target) => {
    const means = []
    for (let sample = 0; sample < samples; sample++) {
      means.push(plain.__guardRepeatedInRust(request.action, target, batch))
    }
    return median(means)
  }
  results.session_guard_in_rust = inRust(request.path)
  results.session_guard_overhead = results.session_guard - results.session_guard_in_rust
  results.session_guard_denied_in_rust = inRust(deniedRequest.path)
  results.session_guard_denied_overhead = results.session_guard_denied - results.session_guard_denied_in_rust
  // The same two, interleaved: each round times a batch from JS, then a batch in Rust, so that
  // both see the same load; the overhead is the median of the rounds' differences.
  const fromJs = []
  const fromRust = []
  const differences = []
  for (let round = 0; round < samples; round++) {
    const started = process.hrtime.bigint()
    for (let i = 0; i < batch; i++) plain.guard(request)
    const jsNs = Number(process.hrtime.bigint() - started) / batch
    const rustNs = plain.__guardRepeatedInRust(request.action, request.path, batch)
    fromJs.push(jsNs)
    fromRust.push(rustNs)
    differences.push(jsNs - rustNs)
  }
  results.interleaved_session_guard = median(fromJs)
  results.interleaved_session_guard_in_rust = median(fromRust)
  results.interleaved_session_guard_overhead = median(differences)
  for (const [name, ns] of Object.entries(results)) {
    rows.push({ bench: 'guard', case: name, ns_per_call: ns.toFixed(1) })
    console.error(`${name.padEnd(36)} ${ns.toFixed(0).padStart(6)} ns/call`)
  }
  tracedSession.end()
  traced.tracer.close()
  fs.rmSync(dir, { recursive: true, force: true })
}

/** The prose-and-code corpus of `benches/tokens_vs_tiktoken.py`: core/src/**\/*.rs, docs/*.md. */
function corpus() {
  const files = []
  const walk = (dir) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name)
      if (entry.isDirectory()) walk(full)
      else if (entry.name.endsWith('.rs')) files.push(full)
    }
  }
  walk(path.join(ROOT, 'core', 'src'))
  // Python's sorted() of full paths: code-point order.
  files.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
  const docs = fs
    .readdirSync(path.join(ROOT, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .map((name) => path.join(ROOT, 'docs', name))
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
  return [...files, ...docs].map((file) => fs.readFileSync(file, 'utf8')).join('\n')
}

function countBenches() {
  const text = corpus()
  const bytes = Buffer.byteLength(text)
  const lines = text.split('\n')
  for (const encodingName of ['o200k_base', 'cl100k_base']) {
    const peer = getEncoding(encodingName)
    const tokens = countTokens(encodingName, text).tokens
    const peerTokens = peer.encode(text, [], []).length
    if (tokens !== peerTokens) throw new Error(`${encodingName}: fourfold ${tokens} != js-tiktoken ${peerTokens}`)
    const lineTokens = lines.reduce((sum, line) => sum + countTokens(encodingName, line).tokens, 0)
    const peerLineTokens = lines.reduce((sum, line) => sum + peer.encode(line, [], []).length, 0)
    if (lineTokens !== peerLineTokens) throw new Error(`${encodingName} lines: ${lineTokens} != ${peerLineTokens}`)
    const cases = [
      ['whole_corpus', () => countTokens(encodingName, text), () => peer.encode(text, [], []).length],
      [
        'line_by_line',
        () => {
          for (const line of lines) countTokens(encodingName, line)
        },
        () => {
          for (const line of lines) peer.encode(line, [], [])
        },
      ],
    ]
    for (const [name, ours, theirs] of cases) {
      const oursNs = fastest(ours)
      const theirsNs = fastest(theirs)
      const mbPerSecond = (ns) => bytes / 1e6 / (ns / 1e9)
      rows.push({
        bench: 'count',
        case: `${encodingName}/${name}`,
        bytes,
        tokens,
        calls: name === 'whole_corpus' ? 1 : lines.length,
        fourfold_mb_s: mbPerSecond(oursNs).toFixed(2),
        js_tiktoken_mb_s: mbPerSecond(theirsNs).toFixed(2),
        ratio: (theirsNs / oursNs).toFixed(2),
      })
      console.error(
        `${`${encodingName}/${name}`.padEnd(36)} fourfold ${mbPerSecond(oursNs).toFixed(1).padStart(6)} MB/s  ` +
          `js-tiktoken ${mbPerSecond(theirsNs).toFixed(1).padStart(6)} MB/s  ${(theirsNs / oursNs).toFixed(1)}x`,
      )
    }
  }
}

guardBenches()
countBenches()
const columns = ['bench', 'case', 'ns_per_call', 'bytes', 'tokens', 'calls', 'fourfold_mb_s', 'js_tiktoken_mb_s', 'ratio']
console.log(columns.join(','))
for (const row of rows) console.log(columns.map((column) => row[column] ?? '').join(','))
