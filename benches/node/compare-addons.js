// Two builds of the Node addon side by side in one process, for a before/after figure that both
// sides take under the same load. For each of two checkouts (each with its addon built in
// bindings-node/), each round times 20,000 allowed guards from JS, the same guard in Rust,
// 20,000 `policy.check`s and 20,000 denied guards (the error caught, minus the same in Rust), the
// two builds taking turns; prints the medians over the rounds (31 unless given).
//
// Usage: node benches/node/compare-addons.js OLD_ROOT NEW_ROOT [ROUNDS]
'use strict'
const POLICY = `
[[rule]]
id = "reads"
effect = "allow"
read = ["src/**"]

[[rule]]
id = "no-secrets"
effect = "deny"
read = [".env"]
`
const [oldRoot, newRoot] = process.argv.slice(2, 4)
if (!oldRoot || !newRoot) throw new Error('usage: compare-addons.js OLD_ROOT NEW_ROOT [ROUNDS]')
const rounds = Number(process.argv[4] || 31)
const batch = 20000
const request = { action: 'read', path: 'src/auth/login.rs' }
const denied = { action: 'read', path: '.env' }
const sides = {}
for (const [name, root] of [['old', oldRoot], ['new', newRoot]]) {
  const lib = require(require('node:path').resolve(root, 'bindings-node', 'lib', 'index.js'))
  const session = new lib.Fourfold({ policy: { toml: POLICY } }).session('coder', 'T-1')
  const policy = lib.Policy.fromToml(POLICY)
  sides[name] = { lib, session, policy, js: [], rust: [], diff: [], check: [], denied: [] }
}
const time = (body) => {
  const started = process.hrtime.bigint()
  for (let i = 0; i < batch; i++) body()
  return Number(process.hrtime.bigint() - started) / batch
}
const checkRequest = { agent: 'coder', ...request }
for (const side of Object.values(sides)) {
  time(() => side.session.guard(request)); time(() => side.policy.check(checkRequest))
  time(() => { try { side.session.guard(denied) } catch (e) { return e } })
}
for (let round = 0; round < rounds; round++) {
  for (const side of Object.values(sides)) {
    const js = time(() => side.session.guard(request))
    const rust = side.session.__guardRepeatedInRust('read', request.path, batch)
    side.js.push(js); side.rust.push(rust); side.diff.push(js - rust)
    side.check.push(time(() => side.policy.check(checkRequest)))
    side.denied.push(time(() => { try { side.session.guard(denied) } catch (e) { return e } }) - side.session.__guardRepeatedInRust('read', denied.path, batch))
  }
}
const median = (v) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]
for (const [name, side] of Object.entries(sides)) {
  console.log(`${name}: guard from JS ${median(side.js).toFixed(0)} ns, in Rust ${median(side.rust).toFixed(0)} ns, overhead (median of differences) ${median(side.diff).toFixed(0)} ns; check ${median(side.check).toFixed(0)} ns; denied overhead ${median(side.denied).toFixed(0)} ns`)
}
