// A typed use of `fourfold` and `fourfold/langchain`, checked by `tsc --noEmit` (not run): it
// fails to compile if the declarations drift from the API.
import { AIMessage } from '@langchain/core/messages'
import { tool } from '@langchain/core/tools'
import { createReactAgent } from '@langchain/langgraph/prebuilt'
import { z } from 'zod'

import {
  type Answer,
  type Decision,
  type DocVersion,
  type FourfoldEvent,
  type Plugin,
  type PutDocument,
  type RerankCandidate,
  type RunTree,
  ContextStore,
  CostMeter,
  Fourfold,
  TraceReader,
  codes,
  countTokens,
  isFourfoldError,
} from 'fourfold'
import { FourfoldCallbackHandler, FourfoldRetriever, findingTool, guardTool } from 'fourfold/langchain'

const audit: Plugin = {
  name: 'audit',
  onEvent(event: FourfoldEvent) {
    if (event.kind === 'gate' && event.gate) console.log(event.gate.outcome, event.gate.rule?.id)
  },
  check: (request) => (request.action === 'tool' ? { outcome: 'pass', reason: 'audited' } : 'fail'),
  onError: (error) => console.error(error.code, error.plugin),
}

export async function governedRun(policyFile: string, traceFile: string): Promise<string> {
  const fourfold = new Fourfold({
    policy: { file: policyFile },
    trace: { file: traceFile },
    context: { archive: ['legacy/'] },
    cost: { unknownModel: 'error', budgets: [{ scope: 'agent:coder', unit: 'tokens', hard: 50_000 }] },
    plugins: [audit],
  })
  const session = fourfold.session('coder', 'T-12')
  fourfold.context?.put('docs/auth.md', '# Auth\n\nCall `login()`.\n')
  const pages: PutDocument[] = [{ key: 'docs/tokens.md', text: '# Tokens\n\nTokens rotate hourly.\n' }]
  const versions: DocVersion[] = (await fourfold.context?.putMany(pages)) ?? []
  console.log(versions.map((version) => `${version.key}@${version.version}`))
  const answer: Answer = await session.ask('login', { budgetTokens: 400 })
  const firstKey: string | undefined = answer.hits[0]?.key
  const renamedTo: string[] = answer.renames.map((rename) => `${rename.old} -> ${rename.new} (${rename.pointer})`)

  try {
    const decision: Decision = session.guard({ action: 'write', path: 'src/auth/login.rs' })
    const verdict: 'allow' | 'deny' | 'pending' = decision.verdict
    console.log(verdict, decision.rule?.id)
  } catch (error) {
    if (isFourfoldError(error, codes.GATE_PENDING)) console.log('waiting on', error.approvalId)
    else if (isFourfoldError(error, codes.STALE_CONTEXT)) session.reread()
    else throw error
  }
  const reservation = session.reserve('gpt-4o', { input: 1200, output: 300 })
  const record = reservation.commit({ input: 1150, output: 120 })
  const micros: number = record.micros
  session.decide('edit', 'the docs say so', ['wait'])
  session.act({ tool: 'edit', args: { path: 'src/auth/login.rs' }, durationMs: 2 })
  const span = session.span('fix login', 'step')
  span?.child('edit', 'tool_call').end()
  span?.end()
  session.end()
  fourfold.tracer?.flush()

  const runs: RunTree[] = await new TraceReader(traceFile).runs()
  const explanations = await new TraceReader(traceFile).explain()
  const meter = new CostMeter({ budgets: [{ scope: 'fleet', unit: 'USD', soft: 10 }] })
  meter.record({ agent: 'coder', model: 'gpt-4o', counts: { input: 10 } })
  return `${firstKey} ${renamedTo.length} ${micros} ${runs.length} ${explanations[0]?.diagnoses.length} ${countTokens('gpt-4o', 'hi').tokens}`
}

export async function keptContext(dir: string): Promise<number> {
  const store = ContextStore.open(dir, { archive: ['legacy/'] })
  const feed = store.subscribe()
  store.record('deploys', 'Deploys run from the release branch only.')
  const saved: number = store.save().nDocuments
  const change = await feed.next(100)
  for await (const later of feed) if (later.version === null) break
  const versions: Array<number | null> = [change?.version ?? null, ...feed.drain().map((next) => next.version)]
  store.setReranker(async (query: string, candidates: RerankCandidate[]) => candidates.map((candidate) => candidate.score), { depth: 10 })
  const reranked: boolean = (await store.ask('deploy branch', { budgetTokens: 300 })).reranked
  store.setReranker(null)
  const hits = (await store.ask('deploy branch', { budgetTokens: 300 })).hits
  const stale: string[] = store.changedSince(hits).map((changed) => changed.reason)
  const progress: number[] = []
  await store.ingestDir(dir, { globs: ['docs/**'], onProgress: (report) => progress.push(report.nFiles) })
  const previous = ContextStore.open(dir, { previous: true })
  return saved + versions.length + stale.length + previous.keys().length + Number(reranked)
}

export async function langchainAgent(fourfold: Fourfold, llm: Parameters<typeof createReactAgent>[0]['llm']) {
  const session = fourfold.session('coder')
  const readFile = tool(async ({ path }: { path: string }) => `contents of ${path}`, {
    name: 'read_file',
    description: 'Reads a file',
    schema: z.object({ path: z.string() }),
  })
  const guarded = guardTool(readFile, session, { request: (input: { path: string }) => ({ action: 'read', path: input.path }) })
  const handler = new FourfoldCallbackHandler(session, { model: 'gpt-4o' })
  const retriever = new FourfoldRetriever({ source: session, budgetTokens: 800 })
  const documents = await retriever.invoke('how do I call login')
  const pointers: string[] = documents.map((document) => document.metadata.pointer)
  const fresh: boolean = documents.every((document) => document.metadata.freshness === 'canonical')
  const search = retriever.asTool({ name: 'search', description: 'Search the docs', schema: z.string() })
  const agent = createReactAgent({ llm, tools: [guarded, findingTool(session), search] })
  const result = await agent.invoke({ messages: [new AIMessage('start')] }, { callbacks: [handler] })
  return { messages: result.messages.length, spent: handler.records.map((record) => record.micros), pointers, fresh }
}
