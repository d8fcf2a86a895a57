// ESM entry of `fourfold/langchain`.
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const langchain = require('./langchain.js')

export const { FourfoldCallbackHandler, FourfoldRetriever, findingTool, guardTool, countsFromUsageMetadata } = langchain
export default langchain
