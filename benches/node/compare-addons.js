// Two builds of the Node addon side by side in one process, for a before/after figure that both
// sides take under the same load. For each of two checkouts (each with its addon built in
// bindings-node/), each round times 20,000 allowed guards from JS, the same guard in Rust,
// 20,000 `policy.check`s and 20,000 denied guards (the error caught, minus the same in Rust), the
// two builds taking turns; prints the medians over the rounds (31 unless given).
//
// Usage: node benches/node/compare-addons.js OLD_ROOT NEW_ROOT [ROUNDS]
'use strict'

const path = require('node:path')

const { POLICY, REQUEST: request, DENIED_REQUEST: deniedRequest, median } = require('./guard-fixture.js')

const [oldRoot, newRoot, roundsArg] = process.argv.slice(2)
if (!oldRoot || !newRoot) throw new Error('usage: compare-addons.js OLD_ROOT NEW_ROOT [ROUNDS]')
const rounds = Number(roundsArg ?? 31)
const batch = 20_000
const checkRequest = { agent: 'coder', ...request }

const sides = {}
for (const [name, root] of [
  ['old', oldRoot],
  ['new', newRoot],
]) {
  const lib = require(path.resolve(root, 'bindings-node', 'lib', 'index.js'))
  const session = new lib.Fourfold({ policy: { toml: POLICY } }).session('coder', 'T-1')
  const policy = lib.Policy.fromToml(POLICY)
  const guardDenied = () => {
    try {
      session.guard(deniedRequest)
    } catch (error) {
      return error
    }
    throw new Error('the denied request was allowed')
  }
  sides[name] = { session, policy, guardDenied, fromJs: [], inRust: [], overhead: [], check: [], deniedOverhead: [] }
}

/** The mean time per call of `batch` calls of `body`, in ns. */
function perCall(body) {
  const started = process.hrtime.bigint()
  for (let i = 0; i < batch; i++) body()
  return Number(process.hrtime.bigint() - started) / batch
}

for (const side of Object.values(sides)) {
  perCall(() => side.session.guard(request))
  perCall(() => side.policy.check(checkRequest))
  perCall(side.guardDenied)
}
for (let round = 0; round < rounds; round++) {
  for (const side of Object.values(sides)) {
    const fromJs = perCall(() => side.session.guard(request))
    const inRust = side.session.__guardRepeatedInRust(request.action, request.path, batch)
    side.fromJs.push(fromJs)
    side.inRust.push(inRust)
    side.overhead.push(fromJs - inRust)
    side.check.push(perCall(() => side.policy.check(checkRequest)))
    const denied = perCall(side.guardDenied)
    side.deniedOverhead.push(denied - side.session.__guardRepeatedInRust(deniedRequest.action, deniedRequest.path, batch))
  }
}
for (const [name, side] of Object.entries(sides)) {
  const ns = (values) => `${median(values).toFixed(0)} ns`
  console.log(
    `${name}: guard from JS ${ns(side.fromJs)}, in Rust ${ns(side.inRust)}, ` +
      `overhead (median of differences) ${ns(side.overhead)}; check ${ns(side.check)}; ` +
      `denied overhead ${ns(side.deniedOverhead)}`,
  )
}
