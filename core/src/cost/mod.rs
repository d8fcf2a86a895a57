//! CostMeter: exact token counts, prices, budgets that stop work, and tokens saved.

mod count;
mod err;

pub use count::{
    bare_model_name, count, count_chat, encoding_for_model, resolve, ChatMessage, Encoding,
    TokenCount,
};
pub use err::CountError;
