// A chat model that answers with scripted messages, one per call, so that a LangGraph agent loop
// advances turn by turn: the `FakeToolCallingChatModel` pattern of LangChain.js's own tests.
'use strict'

const { BaseChatModel } = require('@langchain/core/language_models/chat_models')

class ScriptedChatModel extends BaseChatModel {
  constructor(fields) {
    super(fields)
    this.responses = fields.responses
    this.idx = 0
    /** The messages of each call, to check what the agent saw. */
    this.calls = []
  }

  _llmType() {
    return 'scripted'
  }

  async _generate(messages) {
    this.calls.push(messages)
    if (this.idx >= this.responses.length) throw new Error('the script has no more turns')
    const message = this.responses[this.idx]
    this.idx += 1
    return { generations: [{ text: typeof message.content === 'string' ? message.content : '', message }] }
  }

  bindTools() {
    // The script decides which tools are called; binding changes nothing, and the turn counter is
    // shared with the model the agent holds.
    return this
  }
}

module.exports = { ScriptedChatModel }
