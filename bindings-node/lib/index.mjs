// ESM entry of `fourfold`: the same objects as the CommonJS entry.
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const fourfold = require('./index.js')

export const {
  AgentSession,
  ChangeFeed,
  ContextStore,
  CostMeter,
  Fourfold,
  Policy,
  Reservation,
  SharedDocuments,
  Span,
  Tracer,
  TraceReader,
  codes,
  countChatTokens,
  countTokens,
  isFourfoldError,
  usageCounts,
  version,
} = fourfold
export default fourfold
