// Helpers shared by the Node tests: a temporary workspace with a policy, and a fake chat model.
'use strict'

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

/** A policy that exercises every refusal: allow, deny, a review gate, a JS gate, context-fresh. */
const POLICY = `
[[rule]]
id = "coder-auth"
effect = "gate"
gates = ["context-fresh"]
agents = ["coder"]
write = ["src/auth/**"]

[[rule]]
id = "reads"
effect = "allow"
read = ["src/**", "docs/**"]

[[rule]]
id = "no-secrets"
effect = "deny"
read = [".env"]

[[rule]]
id = "push-review"
effect = "gate"
gates = ["human-review"]
run = ["git push *"]

[[rule]]
id = "search"
effect = "allow"
tools = [{ name = "search" }]

[[rule]]
id = "deploy"
effect = "gate"
gates = ["deploy-check"]
tools = [{ name = "deploy" }]

[gates.deploy-check]
kind = "plugin"
`

/** A fresh folder with `policy.toml` (and `fourfold.toml` when `config` is given). */
function workspace(config) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fourfold-node-'))
  fs.writeFileSync(path.join(dir, 'policy.toml'), POLICY)
  if (config !== undefined) fs.writeFileSync(path.join(dir, 'fourfold.toml'), config)
  return dir
}

/** Runs `body` and returns what it threw; fails if it did not throw. */
function thrown(body) {
  try {
    body()
  } catch (error) {
    return error
  }
  throw new Error('expected a throw')
}

/** `POLICY` and a rule letting the coder write findings back under `findings/`. */
const FINDINGS_POLICY = `${POLICY}
[[rule]]
id = "findings"
effect = "allow"
agents = ["coder"]
tools = [{ name = "context_record", glob = { topic = "findings/**" } }]

[[rule]]
id = "reviewers-read-findings"
effect = "allow"
agents = ["reviewer"]
read = ["records/findings-*"]
`

module.exports = { FINDINGS_POLICY, POLICY, workspace, thrown }
