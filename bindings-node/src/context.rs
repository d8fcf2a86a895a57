//! `ContextStore`: versioned documents, served as the current canonical sections.

use std::path::PathBuf;

use fourfold::context::{
    AskOptions as CoreAskOptions, ContextStore as CoreContextStore, IngestReport,
};
use napi::bindgen_prelude::{AsyncTask, Env};
use napi_derive::napi;
use serde_json::Value;

use crate::error::{shield, Fallible, FourfoldError};
use crate::json::to_json;
use crate::task::JsonTask;

/// How to build a standalone `ContextStore`.
#[napi(object)]
pub struct ContextStoreOptions {
    /// Key prefixes (such as `legacy/`) whose documents are never canonical.
    pub archive: Option<Vec<String>>,
    /// Keys canonical over their copies.
    pub pin: Option<Vec<String>>,
}

/// How to ask.
#[napi(object)]
pub struct AskOptions {
    /// The most tokens to serve (o200k_base).
    pub budget_tokens: i64,
    /// The most sections to serve (default 5).
    pub max_hits: Option<u32>,
    /// Also list stale and duplicate copies that match, as pointers.
    pub with_copies: Option<bool>,
}

/// What `ingestDir` reads.
#[napi(object)]
pub struct IngestOptions {
    /// Globs of the relative paths to put (default: every text file).
    pub globs: Option<Vec<String>>,
}

/// A count from JS as the `u64` the core wants.
pub fn to_u64(value: i64, what: &str) -> Fallible<u64> {
    u64::try_from(value).map_err(|_| {
        FourfoldError::invalid(format!(
            "`{what}` must be a non-negative integer, not {value}"
        ))
    })
}

/// The core's ask options for `options`.
pub fn ask_options(options: &AskOptions) -> Fallible<CoreAskOptions> {
    let mut core = CoreAskOptions::budget(to_u64(options.budget_tokens, "budgetTokens")?);
    if let Some(max_hits) = options.max_hits {
        core.max_hits = max_hits as usize;
    }
    core.with_copies = options.with_copies.unwrap_or(false);
    Ok(core)
}

/// The current canonical answer on demand: versioned documents split into sections, each marked
/// canonical, stale or duplicate, searched with BM25.
#[napi]
pub struct ContextStore {
    store: CoreContextStore,
}

impl ContextStore {
    /// A JS store sharing `store`.
    pub fn wrap(store: CoreContextStore) -> ContextStore {
        ContextStore { store }
    }
}

#[napi]
impl ContextStore {
    /// An empty store in memory.
    #[napi(constructor)]
    pub fn new(env: Env, options: Option<ContextStoreOptions>) -> napi::Result<ContextStore> {
        shield(&env, || {
            let mut builder = CoreContextStore::builder();
            if let Some(options) = options {
                for prefix in options.archive.unwrap_or_default() {
                    builder = builder.archive(&prefix);
                }
                for key in options.pin.unwrap_or_default() {
                    builder = builder.pin(&key);
                }
            }
            Ok(ContextStore {
                store: builder.build(),
            })
        })
    }

    /// Puts a new version of document `key`; the same text again changes nothing.
    #[napi(ts_return_type = "import('./lib/types').DocVersion")]
    pub fn put(&self, env: Env, key: String, text: String) -> napi::Result<Value> {
        shield(&env, || to_json(&self.store.put(&key, &text)?))
    }

    /// Deletes document `key`; whether it existed.
    #[napi]
    pub fn delete(&self, env: Env, key: String) -> napi::Result<bool> {
        shield(&env, || Ok(self.store.delete(&key)?))
    }

    /// The current version of document `key`, or `null`.
    #[napi(ts_return_type = "import('./lib/types').Document | null")]
    pub fn get(&self, env: Env, key: String) -> napi::Result<Value> {
        shield(&env, || match self.store.get(&key) {
            Some(document) => to_json(&document),
            None => Ok(Value::Null),
        })
    }

    /// Every version of document `key`, oldest first.
    #[napi(ts_return_type = "import('./lib/types').DocVersion[]")]
    pub fn history(&self, env: Env, key: String) -> napi::Result<Value> {
        shield(&env, || to_json(&self.store.history(&key)))
    }

    /// The keys of the live documents.
    #[napi]
    pub fn keys(&self, env: Env) -> napi::Result<Vec<String>> {
        shield(&env, || Ok(self.store.keys()))
    }

    /// The section `id` at its current version, or `null`.
    #[napi(ts_return_type = "import('./lib/types').Section | null")]
    pub fn get_section(&self, env: Env, id: String) -> napi::Result<Value> {
        shield(&env, || match self.store.get_section(&id) {
            Some(section) => to_json(&section),
            None => Ok(Value::Null),
        })
    }

    /// The canonical sections that answer `query` within the budget, best first, searched off
    /// the JS thread.
    #[napi(ts_return_type = "Promise<import('./lib/types').Answer>")]
    pub fn ask(&self, query: String, options: AskOptions) -> AsyncTask<JsonTask> {
        let store = self.store.clone();
        AsyncTask::new(JsonTask::new(move || {
            to_json(&store.ask_with(&query, &ask_options(&options)?))
        }))
    }

    /// `ask`, on the JS thread: for a small store, where a thread hop costs more than the search.
    #[napi(ts_return_type = "import('./lib/types').Answer")]
    pub fn ask_sync(&self, env: Env, query: String, options: AskOptions) -> napi::Result<Value> {
        shield(&env, || {
            to_json(&self.store.ask_with(&query, &ask_options(&options)?))
        })
    }

    /// Puts every text file under `root` (matching `globs`, if given), keyed by its relative path,
    /// off the JS thread. Unchanged files are not re-indexed; keys whose files are gone are deleted.
    #[napi(ts_return_type = "Promise<import('./lib/types').IngestReport>")]
    pub fn ingest_dir(&self, root: String, options: Option<IngestOptions>) -> AsyncTask<JsonTask> {
        let store = self.store.clone();
        ingest_task(root, options, move |root, globs| {
            Ok(store.ingest_dir(root, globs, |_| {})?)
        })
    }
}

/// An ingest of `root` with the globs of `options`, off the JS thread, its report as JSON.
fn ingest_task(
    root: String,
    options: Option<IngestOptions>,
    ingest: impl FnOnce(&std::path::Path, &[&str]) -> Fallible<IngestReport> + Send + 'static,
) -> AsyncTask<JsonTask> {
    let globs = options
        .and_then(|options| options.globs)
        .unwrap_or_default();
    AsyncTask::new(JsonTask::new(move || {
        let globs: Vec<&str> = globs.iter().map(String::as_str).collect();
        to_json(&ingest(&PathBuf::from(root), &globs)?)
    }))
}

/// The fleet's shared documents (`[context] shared = true` with a PostgreSQL `[store]`): a put or
/// a delete here changes the document for every process of the fleet, which each apply it to
/// their own context store within about a second.
#[napi]
pub struct SharedDocuments {
    fourfold: fourfold::Fourfold,
}

impl SharedDocuments {
    /// The shared documents of `fourfold`, if it has some.
    pub fn of(fourfold: &fourfold::Fourfold) -> Option<SharedDocuments> {
        fourfold.shared_documents().map(|_| SharedDocuments {
            fourfold: fourfold.clone(),
        })
    }

    fn documents(&self) -> Fallible<&fourfold::context::SharedDocuments> {
        shared_documents_of(&self.fourfold)
    }
}

/// The shared documents of `fourfold`.
fn shared_documents_of(
    fourfold: &fourfold::Fourfold,
) -> Fallible<&fourfold::context::SharedDocuments> {
    // INVARIANT: a SharedDocuments is made only for a Fourfold that has shared documents, which
    // it keeps for life.
    fourfold.shared_documents().ok_or_else(|| {
        FourfoldError::new(
            crate::error::FOURFOLD_ERROR,
            "this Fourfold has no shared documents".to_string(),
        )
    })
}

#[napi]
impl SharedDocuments {
    /// Puts a new version of document `key` for the whole fleet; the version as this process
    /// applied it (every process applies the same).
    #[napi(ts_return_type = "import('./lib/types').DocVersion")]
    pub fn put(&self, env: Env, key: String, text: String) -> napi::Result<Value> {
        shield(&env, || to_json(&self.documents()?.put(&key, &text)?))
    }

    /// Retires document `key` for the whole fleet; whether this process held it.
    #[napi]
    pub fn delete(&self, env: Env, key: String) -> napi::Result<bool> {
        shield(&env, || Ok(self.documents()?.delete(&key)?))
    }

    /// Applies the puts and deletes other processes made since the last refresh, now rather than
    /// within the second; how many.
    #[napi]
    pub fn refresh(&self, env: Env) -> napi::Result<i64> {
        shield(&env, || Ok(self.documents()?.refresh()? as i64))
    }

    /// Publishes the files under `root` (matching `globs`, if given) to the whole fleet, off the
    /// JS thread: changed files become new versions, unchanged ones append nothing, and documents
    /// an ingest of `root` put before whose files are gone are retired.
    #[napi(ts_return_type = "Promise<import('./lib/types').IngestReport>")]
    pub fn ingest_dir(&self, root: String, options: Option<IngestOptions>) -> AsyncTask<JsonTask> {
        let fourfold = self.fourfold.clone();
        ingest_task(root, options, move |root, globs| {
            Ok(shared_documents_of(&fourfold)?.ingest_dir(root, globs, |_| {})?)
        })
    }

    /// This process's context store, kept current.
    #[napi(getter)]
    pub fn context(&self, env: Env) -> napi::Result<ContextStore> {
        shield(&env, || {
            Ok(ContextStore::wrap(self.documents()?.context().clone()))
        })
    }
}
