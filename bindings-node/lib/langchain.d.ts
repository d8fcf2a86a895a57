// Types of `fourfold/langchain`.
import { BaseCallbackHandler } from '@langchain/core/callbacks/base'
import type { Document } from '@langchain/core/documents'
import { BaseRetriever, type BaseRetrieverInput } from '@langchain/core/retrievers'
import type { DynamicStructuredTool, StructuredToolInterface } from '@langchain/core/tools'
import type { AgentSession, ContextStore, RequestInput } from './index'
import type { CostRecord } from './types'

/** Records a LangChain.js agent's model calls, usage, cost, tool calls and errors in a session. */
export declare class FourfoldCallbackHandler extends BaseCallbackHandler {
  name: string
  /** The session records go to. */
  session: AgentSession
  /** The cost records of the model calls, in order. */
  records: CostRecord[]
  /** Errors met while recording; the agent is never stopped by them. */
  errors: unknown[]
  /** `model` prices calls whose chat model reports no model name. */
  constructor(session: AgentSession, options?: { model?: string })
}

/** The metadata of a document `FourfoldRetriever` serves: where the section is and how current. */
export interface FourfoldDocumentMetadata {
  /** `key:line` of the section. */
  pointer: string
  key: string
  sectionId: string
  headingPath: string[]
  version: number
  freshness: 'canonical' | 'stale' | 'duplicate'
  reason: string | null
  tokens: number
  /** The session already held this version: the document's text is a pointer, not the section. */
  alreadyServed: boolean
}

/** Options of `FourfoldRetriever`. */
export interface FourfoldRetrieverInput extends BaseRetrieverInput {
  /** A session (reads traced, scoped by the policy, pointers for what it holds) or a store. */
  source: AgentSession | ContextStore
  /** The budget of each ask, in tokens (default 2000). */
  budgetTokens?: number
}

/** Serves the canonical current sections that answer a query, within a token budget. */
export declare class FourfoldRetriever extends BaseRetriever<FourfoldDocumentMetadata> {
  lc_namespace: string[]
  source: AgentSession | ContextStore
  budgetTokens: number
  constructor(fields: FourfoldRetrieverInput)
  _getRelevantDocuments(query: string): Promise<Document<FourfoldDocumentMetadata>[]>
}

/** Options of `guardTool`. */
export interface GuardToolOptions<Input> {
  /** The request to guard for a call (default: `{ action: 'tool', name, args: input }`). */
  request?: (input: Input) => RequestInput
}

/** `tool`, with every call guarded by `session`; a refused call returns an error tool message. */
export declare function guardTool(
  tool: StructuredToolInterface,
  session: AgentSession,
  options?: GuardToolOptions<any>,
): DynamicStructuredTool

/**
 * A tool for the agent to write a finding back (`session.recordFinding(topic, text)`, judged by
 * the policy as the tool call `context_record`); a refusal returns an error tool message.
 */
export declare function findingTool(
  session: AgentSession,
  options?: { name?: string },
): DynamicStructuredTool

/** Token counts from a LangChain `usage_metadata`. */
export declare function countsFromUsageMetadata(usage: {
  input_tokens?: number
  output_tokens?: number
  input_token_details?: { cache_read?: number; cache_creation?: number }
  output_token_details?: { reasoning?: number }
}): { input: number; output: number; cacheRead: number; cacheWrite: number; reasoning: number }
