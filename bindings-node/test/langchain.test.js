// `fourfold/langchain`: a real LangGraph ReAct agent loop, driven by a scripted chat model, with
// tools guarded by the policy and every model call, tool call and error recorded in the trace.
'use strict'

const assert = require('node:assert/strict')
const path = require('node:path')
const test = require('node:test')

const { AIMessage, HumanMessage, ToolMessage } = require('@langchain/core/messages')
const { tool } = require('@langchain/core/tools')
const { createReactAgent } = require('@langchain/langgraph/prebuilt')
const { z } = require('zod')

const { Fourfold, TraceReader } = require('../lib/index.js')
const {
  FourfoldCallbackHandler,
  FourfoldRetriever,
  findingTool,
  guardTool,
  countsFromUsageMetadata,
} = require('../lib/langchain.js')
const { ScriptedChatModel } = require('./fake-model.js')
const { FINDINGS_POLICY, POLICY, workspace } = require('./util.js')

function setup() {
  const dir = workspace()
  const fourfold = new Fourfold({
    policy: { file: path.join(dir, 'policy.toml') },
    trace: { file: path.join(dir, 'fourfold.trace') },
    cost: {},
  })
  const session = fourfold.session('coder', 'T-7')
  const files = { 'src/lib.rs': 'pub fn login() {}', '.env': 'SECRET=1' }
  const readFile = tool(async ({ path: filePath }) => files[filePath] ?? 'no such file', {
    name: 'read_file',
    description: 'Reads a file of the workspace',
    schema: z.object({ path: z.string() }),
  })
  const guarded = guardTool(readFile, session, { request: (input) => ({ action: 'read', path: input.path }) })
  return { dir, fourfold, session, guarded }
}

function toolCall(id, name, args) {
  return { id, name, args, type: 'tool_call' }
}

test('a denied tool call becomes an error tool message naming the rule, and the agent carries on', async () => {
  const { dir, fourfold, session, guarded } = setup()
  const model = new ScriptedChatModel({
    responses: [
      new AIMessage({
        content: '',
        tool_calls: [toolCall('call-1', 'read_file', { path: '.env' })],
        usage_metadata: { input_tokens: 120, output_tokens: 20, total_tokens: 140 },
      }),
      new AIMessage({
        content: '',
        tool_calls: [toolCall('call-2', 'read_file', { path: 'src/lib.rs' })],
        usage_metadata: { input_tokens: 200, output_tokens: 25, total_tokens: 225 },
      }),
      new AIMessage({
        content: 'login() takes no arguments',
        usage_metadata: { input_tokens: 260, output_tokens: 8, total_tokens: 268 },
      }),
    ],
  })
  const handler = new FourfoldCallbackHandler(session, { model: 'gpt-4o' })
  const agent = createReactAgent({ llm: model, tools: [guarded] })

  const result = await agent.invoke(
    { messages: [new HumanMessage('what does login take?')] },
    { callbacks: [handler] },
  )

  const toolMessages = result.messages.filter((message) => message instanceof ToolMessage)
  assert.equal(toolMessages.length, 2)
  assert.equal(toolMessages[0].status, 'error')
  assert.equal(toolMessages[0].tool_call_id, 'call-1')
  assert.match(toolMessages[0].content, /rule `no-secrets`/)
  assert.equal(toolMessages[1].status, 'success')
  assert.equal(toolMessages[1].content, 'pub fn login() {}')
  assert.equal(result.messages.at(-1).content, 'login() takes no arguments')
  // The model saw the refusal on its second turn.
  assert.match(model.calls[1].at(-1).content, /no-secrets/)

  // Three model calls, priced from their reported usage.
  assert.deepEqual(handler.errors, [])
  assert.deepEqual(
    handler.records.map((record) => [record.model, record.counts.input, record.counts.output]),
    [
      ['gpt-4o', 120, 20],
      ['gpt-4o', 200, 25],
      ['gpt-4o', 260, 8],
    ],
  )
  assert.ok(handler.records.every((record) => record.micros > 0 && record.run === session.runId))

  session.end()
  fourfold.tracer.flush()
  const [run] = await new TraceReader(path.join(dir, 'fourfold.trace')).runs()
  assert.equal(run.runId, session.runId)
  const spans = new Map(run.spans.map((span) => [span.spanId, span]))
  const llmSpans = run.spans.filter((span) => span.kind === 'llm_call')
  const toolSpans = run.spans.filter((span) => span.kind === 'tool_call')
  assert.equal(llmSpans.length, 3)
  assert.equal(toolSpans.length, 2)
  // Each span is nested in a step of the graph, as LangChain nests its run ids.
  for (const span of [...llmSpans, ...toolSpans]) {
    assert.equal(spans.get(span.parentSpanId)?.kind, 'step', `${span.name} nested in a step`)
  }
  const actions = toolSpans.flatMap((span) => span.events.filter((event) => event.kind === 'action'))
  assert.equal(actions.length, 2)
  assert.match(actions[0].action.error, /no-secrets/)
  assert.equal(actions[1].action.error, null)
  assert.equal(JSON.parse(actions[1].action.argumentsJson).path, 'src/lib.rs')
  const allEvents = [...run.looseEvents, ...run.spans.flatMap((span) => span.events)]
  const gates = allEvents.filter((event) => event.kind === 'gate').map((event) => event.gate.outcome)
  assert.deepEqual(gates, ['denied', 'allowed'])
  const costs = allEvents.filter((event) => event.kind === 'cost')
  assert.equal(costs.length, 3)

  const [explanation] = await new TraceReader(path.join(dir, 'fourfold.trace')).explain()
  assert.ok(explanation.diagnoses.length >= 1)
})

test('a tool that throws is recorded as a failed action and the error reaches the agent loop', async () => {
  const { dir, fourfold, session } = setup()
  const broken = tool(
    async () => {
      throw new Error('index unavailable')
    },
    { name: 'search', description: 'Searches', schema: z.object({ query: z.string() }) },
  )
  const model = new ScriptedChatModel({
    responses: [
      new AIMessage({ content: '', tool_calls: [toolCall('call-1', 'search', { query: 'login' })] }),
      new AIMessage({ content: 'the search failed' }),
    ],
  })
  const handler = new FourfoldCallbackHandler(session, { model: 'gpt-4o' })
  const agent = createReactAgent({ llm: model, tools: [guardTool(broken, session)] })
  const result = await agent.invoke({ messages: [new HumanMessage('find login')] }, { callbacks: [handler] })
  const toolMessage = result.messages.find((message) => message instanceof ToolMessage)
  assert.match(toolMessage.content, /index unavailable/)
  // No usage reported: the calls were counted with the model's tokenizer.
  assert.equal(handler.records.length, 2)
  assert.ok(handler.records.every((record) => record.counts.input > 0))

  session.end()
  fourfold.tracer.flush()
  const [run] = await new TraceReader(path.join(dir, 'fourfold.trace')).runs()
  const toolSpan = run.spans.find((span) => span.kind === 'tool_call')
  assert.match(toolSpan.error, /index unavailable/)
  const action = toolSpan.events.find((event) => event.kind === 'action')
  assert.match(action.action.error, /index unavailable/)
})

test('a pending review gate names its approval id in the tool message', async () => {
  const { session } = setup()
  const shell = tool(async ({ command }) => `ran ${command}`, {
    name: 'shell',
    description: 'Runs a command',
    schema: z.object({ command: z.string() }),
  })
  const guarded = guardTool(shell, session, { request: (input) => ({ action: 'run', command: input.command }) })
  const message = await guarded.invoke(toolCall('call-9', 'shell', { command: 'git push origin main' }))
  assert.equal(message.status, 'error')
  assert.match(message.content, /approval `ap-[0-9a-f]+` is pending/)
  assert.match(message.content, /rule `push-review`/)
  // Called without a tool call id, the refusal is plain text.
  assert.match(await guarded.invoke({ command: 'git push origin main' }), /^fourfold refused `shell`/)
  assert.match(await guarded.invoke({ command: 'ls' }), /no rule allows/)
  // An error that is not a refusal (here, a request the policy cannot read) is thrown.
  const misdirected = guardTool(shell, session, { request: () => ({ action: 'launch' }) })
  await assert.rejects(misdirected.invoke({ command: 'ls' }), { code: 'FOURFOLD_INVALID_REQUEST' })
})

test('usage metadata becomes fourfold token counts, cache reads split from the prompt', () => {
  assert.deepEqual(
    countsFromUsageMetadata({
      input_tokens: 100,
      output_tokens: 30,
      total_tokens: 130,
      input_token_details: { cache_read: 40 },
      output_token_details: { reasoning: 10 },
    }),
    { input: 60, output: 30, cacheRead: 40, cacheWrite: 0, reasoning: 10 },
  )
})

test('an agent writes a finding back through findingTool where the policy allows', async () => {
  const fourfold = new Fourfold({ policy: { toml: FINDINGS_POLICY }, context: {} })
  const session = fourfold.session('coder', 'T-8')
  const model = new ScriptedChatModel({
    responses: [
      new AIMessage({ content: '', tool_calls: [toolCall('call-1', 'context_record', { topic: 'notes', text: 'Slow builds.' })] }),
      new AIMessage({
        content: '',
        tool_calls: [toolCall('call-2', 'context_record', { topic: 'findings/flaky', text: 'Auth tests fail in parallel.' })],
      }),
      new AIMessage({ content: 'Recorded.' }),
    ],
  })
  const agent = createReactAgent({ llm: model, tools: [findingTool(session)] })
  const result = await agent.invoke({ messages: [new HumanMessage('write down what you found')] })
  const [refused, recorded] = result.messages.filter((message) => message instanceof ToolMessage)
  assert.equal(refused.status, 'error')
  assert.match(refused.content, /fourfold refused `context_record`/)
  assert.match(recorded.content, /records\/findings-flaky\.md v1/)
  assert.deepEqual(fourfold.context.keys(), ['records/findings-flaky.md'])
})

const AUTH = '# Auth\n\n## Login\n\nCall `login(user, password)` to open a session; it returns a token.\n'

test('the retriever serves canonical sections with their markers, and pointers for what the session holds', async () => {
  const fourfold = new Fourfold({ policy: { toml: POLICY }, context: { archive: ['archive/'] } })
  fourfold.context.put('docs/auth.md', AUTH)
  fourfold.context.put('archive/old-auth.md', AUTH)
  const session = fourfold.session('coder', 'T-1')
  const retriever = new FourfoldRetriever({ source: session, budgetTokens: 500 })
  const documents = await retriever.invoke('how do I call login to open a session')
  assert.ok(documents.length > 0, 'the retriever served nothing')
  const [first] = documents
  assert.deepEqual(
    [first.metadata.freshness, first.metadata.key, first.metadata.alreadyServed],
    ['canonical', 'docs/auth.md', false],
  )
  assert.match(first.metadata.pointer, /^docs\/auth\.md:\d+$/)
  assert.match(first.pageContent, /login\(user, password\)/)
  assert.ok(documents.every((document) => document.metadata.key !== 'archive/old-auth.md'))
  // Asked again, the session already holds the section: a pointer, not the text again.
  const [again] = await retriever.invoke('how do I call login to open a session')
  assert.equal(again.metadata.alreadyServed, true)
  assert.match(again.pageContent, /already served, unchanged: docs\/auth\.md:/)
  // A store works as a source too, without a session; the budget is kept.
  const fromStore = await new FourfoldRetriever({ source: fourfold.context, budgetTokens: 500 }).invoke('login')
  assert.equal(fromStore[0].metadata.freshness, 'canonical')
  assert.ok(fromStore.reduce((sum, document) => sum + document.metadata.tokens, 0) <= 500)
  // A session is served only what the policy lets its agent read (`src/**` and `docs/**` here).
  fourfold.context.put('internal/vault.md', '# Vault\n\n## Signing keys\n\nThe signing keys live in vault path `kv/auth`.\n')
  const vault = new FourfoldRetriever({ source: fourfold.session('coder', 'T-2') })
  assert.deepEqual(await vault.invoke('vault signing keys'), [])
  const operator = new FourfoldRetriever({ source: fourfold.context })
  assert.deepEqual((await operator.invoke('vault signing keys')).map((document) => document.metadata.key), ['internal/vault.md'])
  assert.throws(() => new FourfoldRetriever({}), TypeError)
  assert.throws(() => new FourfoldRetriever({ source: session, budgetTokens: -1 }), TypeError)
})

test('an agent is served a canonical section through the retriever as a tool', async () => {
  const dir = workspace()
  const fourfold = new Fourfold({
    policy: { file: path.join(dir, 'policy.toml') },
    trace: { file: path.join(dir, 'fourfold.trace') },
    context: {},
  })
  fourfold.context.put('docs/auth.md', AUTH)
  const session = fourfold.session('coder', 'T-1')
  const search = new FourfoldRetriever({ source: session, budgetTokens: 500 }).asTool({
    name: 'search',
    description: "Search the team's docs.",
    schema: z.string(),
  })
  const model = new ScriptedChatModel({
    responses: [
      new AIMessage({ content: '', tool_calls: [toolCall('call-1', 'search', { input: 'login session token' })] }),
      new AIMessage({ content: 'Use login(user, password).' }),
    ],
  })
  const agent = createReactAgent({ llm: model, tools: [search] })
  const result = await agent.invoke({ messages: [new HumanMessage('how do I log in?')] })
  const served = result.messages.find((message) => message instanceof ToolMessage)
  assert.match(String(served.content), /login\(user, password\)/)
  fourfold.tracer.flush()
  const [run] = await new TraceReader(path.join(dir, 'fourfold.trace')).runs()
  const contexts = run.looseEvents.filter((event) => event.kind === 'context')
  assert.deepEqual(
    contexts.map((event) => event.context.sections.map((section) => section.key)),
    [['docs/auth.md']],
  )
})
