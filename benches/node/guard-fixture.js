// What the Node guard benches share: the policy, the requests they time, and the median they
// report, so that bench.js and compare-addons.js measure the same calls the same way.
'use strict'

/** Two rules: reads under src/ allowed, `.env` denied. */
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

/** The allowed request every guard bench times. */
const REQUEST = { action: 'read', path: 'src/auth/login.rs' }

/** The request the policy denies. */
const DENIED_REQUEST = { action: 'read', path: '.env' }

/** The median of `values` (the upper one of an even count). */
function median(values) {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]
}

module.exports = { POLICY, REQUEST, DENIED_REQUEST, median }
