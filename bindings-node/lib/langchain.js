'use strict'
// `fourfold/langchain`: a LangChain.js callback handler that records an agent's model calls, token
// usage, cost, tool calls and errors in a fourfold session, nested by LangChain run id; a tool
// wrapper that puts every call through `session.guard`, so that a refused call becomes an error
// tool message naming the rule, and the agent carries on; and a retriever that serves the
// ContextStore's canonical current sections as LangChain documents.

const { BaseCallbackHandler } = require('@langchain/core/callbacks/base')
const { Document } = require('@langchain/core/documents')
const { BaseRetriever } = require('@langchain/core/retrievers')
const { ToolMessage } = require('@langchain/core/messages')
const { DynamicStructuredTool } = require('@langchain/core/tools')
const { countChatTokens, countTokens, isFourfoldError } = require('./index.js')

/** The codes of a refusal: the agent is told, and carries on. */
const REFUSALS = new Set([
  'FOURFOLD_POLICY_DENIED',
  'FOURFOLD_GATE_PENDING',
  'FOURFOLD_STALE_CONTEXT',
  'FOURFOLD_BUDGET_EXCEEDED',
])

function messageText(message) {
  const content = message?.content
  if (typeof content === 'string') return content
  if (Array.isArray(content)) {
    return content.map((part) => (typeof part === 'string' ? part : (part?.text ?? ''))).join('')
  }
  return ''
}

function messageRole(message) {
  const type = typeof message?._getType === 'function' ? message._getType() : message?.type
  return { human: 'user', ai: 'assistant', system: 'system', tool: 'tool' }[type] ?? 'user'
}

/**
 * Token counts from a LangChain `usage_metadata` (`input_tokens` counts the whole prompt, cached
 * tokens included; fourfold's `input` does not).
 */
function countsFromUsageMetadata(usage) {
  const cacheRead = usage.input_token_details?.cache_read ?? 0
  const cacheWrite = usage.input_token_details?.cache_creation ?? 0
  return {
    input: Math.max(0, (usage.input_tokens ?? 0) - cacheRead - cacheWrite),
    output: usage.output_tokens ?? 0,
    cacheRead,
    cacheWrite,
    reasoning: usage.output_token_details?.reasoning ?? 0,
  }
}

/** Token counts from an `llmOutput.tokenUsage` (`promptTokens`, `completionTokens`). */
function countsFromTokenUsage(usage) {
  return { input: usage.promptTokens ?? 0, output: usage.completionTokens ?? 0 }
}

function serializedName(serialized) {
  const id = serialized?.id
  return Array.isArray(id) && id.length > 0 ? String(id[id.length - 1]) : (serialized?.name ?? 'unknown')
}

/**
 * Records a LangChain.js agent in a fourfold session: each chat model call as an `llm_call` span
 * with its token usage priced by the cost meter, each tool call as a `tool_call` span with an
 * action event, each chain (a graph node, an agent step) as a `step` span, and every error, all
 * nested as LangChain nests their run ids.
 */
class FourfoldCallbackHandler extends BaseCallbackHandler {
  name = 'fourfold'

  /**
   * @param {import('./index').AgentSession} session the session to record in
   * @param {{ model?: string }} [options] `model`: the model name to price calls with when the chat
   *   model does not report one (LangChain's `ls_model_name`)
   */
  constructor(session, options = {}) {
    super()
    this.session = session
    this.model = options.model
    // Await every callback, so that the records are in place when the agent's call returns.
    this.awaitHandlers = true
    this.runs = new Map()
    /** The cost records of the model calls, in order. */
    this.records = []
    /** Errors met while recording (an unknown model, say); the agent is never stopped by them. */
    this.errors = []
  }

  startSpan(runId, parentRunId, name, kind, fields = {}) {
    const parent = parentRunId === undefined ? undefined : this.runs.get(parentRunId)
    let span = null
    try {
      span = parent?.span ? parent.span.child(name, kind) : this.session.span(name, kind)
    } catch (error) {
      this.errors.push(error)
    }
    this.runs.set(runId, { span, name, kind, startedAt: performance.now(), ...fields })
  }

  endSpan(runId, error) {
    const run = this.runs.get(runId)
    this.runs.delete(runId)
    run?.span?.end(error)
    return run
  }

  modelName(llm, extraParams, metadata) {
    return (
      metadata?.ls_model_name ??
      extraParams?.invocation_params?.model ??
      extraParams?.invocation_params?.model_name ??
      llm?.kwargs?.model ??
      llm?.kwargs?.model_name ??
      this.model ??
      serializedName(llm)
    )
  }

  async handleChatModelStart(llm, messages, runId, parentRunId, extraParams, tags, metadata) {
    const model = this.modelName(llm, extraParams, metadata)
    this.startSpan(runId, parentRunId, model, 'llm_call', { model, messages: messages[0] ?? [] })
  }

  async handleLLMStart(llm, prompts, runId, parentRunId, extraParams, tags, metadata) {
    const model = this.modelName(llm, extraParams, metadata)
    const messages = prompts.map((prompt) => ({ content: prompt, type: 'human' }))
    this.startSpan(runId, parentRunId, model, 'llm_call', { model, messages })
  }

  async handleLLMEnd(output, runId) {
    const run = this.endSpan(runId)
    if (!run) return
    try {
      const generation = output?.generations?.[0]?.[0]
      const usage = generation?.message?.usage_metadata
      const tokenUsage = output?.llmOutput?.tokenUsage
      let counts
      if (usage) counts = countsFromUsageMetadata(usage)
      else if (tokenUsage) counts = countsFromTokenUsage(tokenUsage)
      else {
        // The model reported no usage: count the prompt and the answer with the model's tokenizer.
        const chat = run.messages.map((message) => ({ role: messageRole(message), content: messageText(message) }))
        const answer = generation?.message ? messageText(generation.message) : (generation?.text ?? '')
        counts = {
          input: countChatTokens(run.model, chat).tokens,
          output: countTokens(run.model, answer).tokens,
        }
      }
      this.records.push(this.session.recordUsage(run.model, counts))
    } catch (error) {
      this.errors.push(error)
    }
  }

  async handleLLMError(error, runId) {
    this.endSpan(runId, error?.message ?? String(error))
  }

  async handleToolStart(tool, input, runId, parentRunId, tags, metadata, runName) {
    const name = runName ?? tool?.name ?? serializedName(tool)
    this.startSpan(runId, parentRunId, name, 'tool_call', { input })
  }

  recordAction(run, error) {
    let args = run.input
    if (typeof args === 'string') {
      try {
        args = JSON.parse(args)
      } catch {
        // A plain string input is recorded as it is.
      }
    }
    const action = { tool: run.name, args, durationMs: performance.now() - run.startedAt, error }
    try {
      if (run.span) run.span.act(action)
      else this.session.act(action)
    } catch (recordError) {
      this.errors.push(recordError)
    }
  }

  async handleToolEnd(output, runId) {
    const run = this.runs.get(runId)
    if (!run) return
    // A refusal by `guardTool` comes back as an error tool message: the call did not run.
    const refused = output instanceof ToolMessage && output.status === 'error' ? messageText(output) : undefined
    this.recordAction(run, refused)
    this.endSpan(runId, refused)
  }

  async handleToolError(error, runId) {
    const run = this.runs.get(runId)
    if (!run) return
    const message = error?.message ?? String(error)
    this.recordAction(run, message)
    this.endSpan(runId, message)
  }

  async handleChainStart(chain, inputs, runId, runType, tags, metadata, runName, parentRunId) {
    this.startSpan(runId, parentRunId, runName ?? serializedName(chain), 'step')
  }

  async handleChainEnd(outputs, runId) {
    this.endSpan(runId)
  }

  async handleChainError(error, runId) {
    this.endSpan(runId, error?.message ?? String(error))
  }
}

function refusalText(name, error) {
  const rule = error.ruleId ? ` (rule \`${error.ruleId}\`)` : ''
  const approval = error.approvalId ? `; approval \`${error.approvalId}\` is pending` : ''
  return `fourfold refused \`${name}\`${rule}: ${error.message}${approval}`
}

/**
 * `tool`, with every call put through `session.guard` first. A refused call (denied, pending,
 * stale context, over budget) does not run: it returns an error tool message naming the rule, so
 * the agent reads why and carries on. Any other error is thrown.
 *
 * `options.request(input)` maps the tool's input to the request to guard (such as
 * `{ action: 'read', path: input.path }`); by default it is `{ action: 'tool', name, args: input }`.
 */
function guardTool(tool, session, options = {}) {
  const toRequest = options.request ?? ((input) => ({ action: 'tool', name: tool.name, args: input }))
  return new DynamicStructuredTool({
    name: tool.name,
    description: tool.description,
    schema: tool.schema,
    responseFormat: tool.responseFormat,
    returnDirect: tool.returnDirect,
    func: async (input, runManager, config) => {
      try {
        session.guard(toRequest(input))
      } catch (error) {
        if (!isFourfoldError(error) || !REFUSALS.has(error.code)) throw error
        const content = refusalText(tool.name, error)
        const toolCallId = config?.toolCall?.id
        // LangChain wants a two-tuple from such a tool; the message then carries no error status.
        if (tool.responseFormat === 'content_and_artifact') return [content, undefined]
        if (toolCallId === undefined) return content
        return new ToolMessage({ content, tool_call_id: toolCallId, name: tool.name, status: 'error' })
      }
      return tool._call(input, runManager, config)
    },
  })
}

/**
 * A tool through which the agent writes back what it learned (a decision, an incident, what
 * worked) as the next section of `records/<topic>.md`, served to the other agents: each call is
 * `session.recordFinding(topic, text)`, which the policy judges as the tool call `context_record`
 * with `{ topic }`. A refusal returns an error tool message naming the reason, as `guardTool`'s do.
 */
function findingTool(session, options = {}) {
  const name = options.name ?? 'context_record'
  return new DynamicStructuredTool({
    name,
    description:
      'Write a finding back to the team\'s documentation for other agents: `topic` names the record ' +
      '(such as findings/flaky-tests), `text` is what you learned, first line a heading.',
    schema: {
      type: 'object',
      properties: {
        topic: { type: 'string', description: 'The record to append to, such as findings/flaky-tests.' },
        text: { type: 'string', description: 'What was learned; its first line becomes the heading.' },
      },
      required: ['topic', 'text'],
      additionalProperties: false,
    },
    func: async (input, _runManager, config) => {
      try {
        const version = session.recordFinding(input.topic, input.text)
        return `recorded as ${version.key} v${version.version}; other agents are served it`
      } catch (error) {
        if (!isFourfoldError(error) || !REFUSALS.has(error.code)) throw error
        const content = refusalText(name, error)
        const toolCallId = config?.toolCall?.id
        if (toolCallId === undefined) return content
        return new ToolMessage({ content, tool_call_id: toolCallId, name, status: 'error' })
      }
    },
  })
}

/**
 * Serves the canonical current sections that answer a query, within a token budget, as LangChain
 * documents. `source` is an `AgentSession` (its reads are recorded in the trace, feed the
 * `context-fresh` gate, are scoped by the policy, and a section it already holds comes back as a
 * pointer without text) or a `ContextStore`. A reranker set on the store (`setReranker`) orders what
 * it serves.
 */
class FourfoldRetriever extends BaseRetriever {
  lc_namespace = ['fourfold', 'retrievers']

  constructor(fields) {
    const { source, budgetTokens = 2000, ...rest } = fields ?? {}
    super(rest)
    if (source === null || typeof source?.ask !== 'function') {
      throw new TypeError('FourfoldRetriever needs a `source`: an AgentSession or a ContextStore')
    }
    if (!Number.isInteger(budgetTokens) || budgetTokens < 0) {
      throw new TypeError(`FourfoldRetriever's budgetTokens is a whole number of tokens, not ${budgetTokens}`)
    }
    this.source = source
    this.budgetTokens = budgetTokens
  }

  async _getRelevantDocuments(query) {
    const answer = await this.source.ask(query, { budgetTokens: this.budgetTokens })
    return answer.hits.map(
      (hit) =>
        new Document({
          pageContent: hit.text ?? `(already served, unchanged: ${hit.pointer})`,
          metadata: {
            pointer: hit.pointer,
            key: hit.key,
            sectionId: hit.sectionId,
            headingPath: hit.headingPath,
            version: hit.version,
            freshness: hit.freshness,
            reason: hit.reason,
            tokens: hit.tokens,
            alreadyServed: hit.alreadyServed,
          },
        }),
    )
  }
}

module.exports = { FourfoldCallbackHandler, FourfoldRetriever, findingTool, guardTool, countsFromUsageMetadata }
