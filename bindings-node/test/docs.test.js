// The guide's examples (`docs/node.md`), the package README's and the repository README's, run as
// written.
'use strict'

const fs = require('node:fs')
const path = require('node:path')
const test = require('node:test')

const PACKAGES = {
  fourfold: require.resolve('../lib/index.js'),
  'fourfold/langchain': require.resolve('../lib/langchain.js'),
}

/** `require` as the examples see it: `fourfold` is this package, anything else as usual. */
function exampleRequire(name) {
  return require(PACKAGES[name] ?? name)
}

const AsyncFunction = (async () => {}).constructor

function examples(file) {
  const text = fs.readFileSync(file, 'utf8')
  return [...text.matchAll(/^```js\n([\s\S]*?)^```$/gm)].map((match) => match[1])
}

for (const [name, file] of [
  ['docs/node.md', path.join(__dirname, '..', '..', 'docs', 'node.md')],
  ['bindings-node/README.md', path.join(__dirname, '..', 'README.md')],
  ['README.md', path.join(__dirname, '..', '..', 'README.md')],
]) {
  const blocks = examples(file)
  test(`${name} has examples`, (t) => {
    if (blocks.length === 0) throw new Error(`no js example in ${name}`)
  })
  blocks.forEach((code, index) => {
    test(`${name} example ${index + 1} runs`, async () => {
      await new AsyncFunction('require', code)(exampleRequire)
    })
  })
}
