//! Sessions: what one agent has been served, so it is not served the same text twice.

use parking_lot::Mutex;
use rustc_hash::FxHashMap;

use super::model::{Answer, AskOptions, Change, ReadScope, Section, SectionRead};
use super::store::ContextStore;

/// An agent's conversation with the store. It remembers which section versions it served; asking
/// again for a section the agent already holds, unchanged, serves a pointer instead of the text.
/// A session [`scoped`](Session::scoped) is served only the documents its scope allows.
pub struct Session {
    store: ContextStore,
    agent: String,
    run_id: Option<String>,
    task: Option<String>,
    /// Section id → (key, document version served, version the text last changed in).
    served: Mutex<FxHashMap<String, (String, u64, u64)>>,
    scope: Option<ReadScope>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("agent", &self.agent)
            .field("run_id", &self.run_id)
            .field("task", &self.task)
            .field("served", &self.served.lock().len())
            .field("scoped", &self.scope.is_some())
            .finish()
    }
}

impl ContextStore {
    /// A session for `agent`; its asks are recorded as `Context` events of `run_id` and `task`.
    pub fn session(&self, agent: &str, run_id: Option<&str>, task: Option<&str>) -> Session {
        Session {
            store: self.clone(),
            agent: agent.to_string(),
            run_id: run_id.map(str::to_string),
            task: task.map(str::to_string),
            served: Mutex::new(FxHashMap::default()),
            scope: None,
        }
    }
}

impl Session {
    /// This session, served only the documents `scope` allows: its asks leave the others out
    /// (their sections, their copies and the renames they state; [`Answer::withheld`] counts
    /// them), and neither [`Session::get_section`] nor [`Session::reread_changed`] serves them.
    pub fn scoped(mut self, scope: ReadScope) -> Session {
        self.scope = Some(scope);
        self
    }

    /// Whether this session may be served document `key`.
    fn allows(&self, key: &str) -> bool {
        self.scope.as_ref().is_none_or(|scope| scope(key))
    }

    /// The section `id` as it is now, if this session may be served its document.
    pub fn get_section(&self, id: &str) -> Option<Section> {
        self.store
            .get_section(id)
            .filter(|section| self.allows(&section.key))
    }

    /// Asks the store; sections this session already holds, unchanged, come back as pointers
    /// (`already_served`, no text) and cost only their header's tokens.
    pub fn ask(&self, query: &str, budget_tokens: u64) -> Answer {
        self.ask_with(query, &AskOptions::budget(budget_tokens))
    }

    /// [`Session::ask`] with options; the session's agent, run and task replace the options'.
    pub fn ask_with(&self, query: &str, options: &AskOptions) -> Answer {
        let mut options = options.clone();
        options.agent = Some(self.agent.clone());
        options.run_id = self.run_id.clone();
        options.task = self.task.clone();
        let answer = {
            let served = self.served.lock();
            self.store.ask_in(
                query,
                &options,
                |section_id, changed_in| {
                    served
                        .get(section_id)
                        .is_some_and(|(_, _, served_changed_in)| *served_changed_in == changed_in)
                },
                self.scope.as_ref(),
            )
        };
        let mut served = self.served.lock();
        for hit in answer.hits.iter().filter(|hit| hit.text.is_some()) {
            served.insert(
                hit.section_id.clone(),
                (hit.key.clone(), hit.version, hit.changed_in),
            );
        }
        answer
    }

    /// The section versions this session was served.
    pub fn reads(&self) -> Vec<SectionRead> {
        let mut reads: Vec<SectionRead> = self
            .served
            .lock()
            .iter()
            .map(|(section_id, (key, version, _))| SectionRead {
                key: key.clone(),
                section_id: section_id.clone(),
                version: *version,
            })
            .collect();
        reads.sort_by(|a, b| (&a.key, &a.section_id).cmp(&(&b.key, &b.section_id)));
        reads
    }

    /// The sections this session was served that have changed or gone since.
    pub fn changed(&self) -> Vec<Change> {
        self.store.changed_since(&self.reads())
    }

    /// Serves the current version of every section this session holds that has changed since,
    /// and records it as read; sections that are gone, or whose document the session's scope no
    /// longer allows, are forgotten. Returns the sections served
    /// and the changes they answer, so the caller can show what changed.
    pub fn reread_changed(&self) -> (Vec<Section>, Vec<Change>) {
        let changes = self.changed();
        let mut sections = Vec::new();
        let mut served = self.served.lock();
        for change in &changes {
            match self.get_section(&change.read.section_id) {
                Some(section) if section.key == change.read.key => {
                    served.insert(
                        section.id.clone(),
                        (section.key.clone(), section.version, section.changed_in),
                    );
                    sections.push(section);
                }
                _ => {
                    served.remove(&change.read.section_id);
                }
            }
        }
        (sections, changes)
    }
}
