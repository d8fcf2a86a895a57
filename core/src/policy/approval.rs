//! Pending approvals of review gates, kept durably in a [`Store`].
//!
//! An approval is opened when a `gate` rule holds a request. It is resolved by a person
//! ([`Policy::approve`](super::Policy::approve) / [`Policy::reject`](super::Policy::reject)) or by the
//! gate's plugin, it can expire, and once approved it is used exactly once, by a request identical to
//! the one it was opened for. Every state change is a compare-and-swap on the stored record, so two
//! processes sharing a store can never both use one approval.

use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};

use super::err::ApprovalError;
use super::Request;
use crate::error::{StoreCorruptError, StoreError};
use crate::event::RuleOrigin;
use crate::store::Store;

/// The store namespace approvals live in.
pub(crate) const NAMESPACE: &str = "approvals";

/// The store namespace of the index from a request to its newest approval: the key is a hash of
/// the request, the value the approval's id. Looking an identical request's approval up reads two
/// records, where reading every approval made each gated check cost time in proportion to the
/// approvals ever opened (5 ms a check after a thousand, in memory; a file read each on disk).
const INDEX_NAMESPACE: &str = "approvals-by-request";

/// The key of the index's record saying it covers every approval: written once the index is
/// built from the approvals a store already held (from before the index existed). It cannot be
/// taken for a request's key, which is hex.
const INDEX_READY_KEY: &str = "ready";

/// Where an approval stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum ApprovalState {
    /// Waiting for its gates.
    Pending,
    /// Approved, not used yet.
    Approved {
        /// Who approved (a person, or the plugin of a gate).
        approver: String,
        /// What the approver said.
        note: String,
        /// When, in nanoseconds since the Unix epoch.
        at_ns: u64,
    },
    /// Rejected: the request stays denied.
    Rejected {
        /// Who rejected.
        approver: String,
        /// What the approver said.
        note: String,
        /// When, in nanoseconds since the Unix epoch.
        at_ns: u64,
    },
    /// Approved and then used by its request; it cannot be used again.
    Used {
        /// Who had approved it.
        approver: String,
        /// When it was used, in nanoseconds since the Unix epoch.
        at_ns: u64,
    },
    /// Expired before it was resolved or used.
    Expired {
        /// When it was found expired, in nanoseconds since the Unix epoch.
        at_ns: u64,
    },
}

impl ApprovalState {
    /// The state's name: `pending`, `approved`, `rejected`, `used`, `expired`.
    pub fn name(&self) -> &'static str {
        match self {
            ApprovalState::Pending => "pending",
            ApprovalState::Approved { .. } => "approved",
            ApprovalState::Rejected { .. } => "rejected",
            ApprovalState::Used { .. } => "used",
            ApprovalState::Expired { .. } => "expired",
        }
    }
}

/// A request held by review gates, and what became of it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Approval {
    /// The approval's id, as handed to the agent in a pending decision.
    pub id: String,
    /// The request it was opened for; only an identical request can use it.
    pub request: Request,
    /// The gates that hold it.
    pub gates: Vec<String>,
    /// The rule that gated the request.
    pub rule: Option<RuleOrigin>,
    /// Why the request was gated.
    pub reason: String,
    /// When it was opened, in nanoseconds since the Unix epoch.
    pub created_ns: u64,
    /// When it expires, if it does.
    pub expires_ns: Option<u64>,
    /// Where it stands.
    #[serde(flatten)]
    pub state: ApprovalState,
}

impl Approval {
    /// Whether the approval has expired at `now_ns`.
    pub fn is_expired_at(&self, now_ns: u64) -> bool {
        self.expires_ns
            .is_some_and(|expires_ns| now_ns >= expires_ns)
    }
}

/// Approvals in a store, with their compare-and-swap transitions.
pub(crate) struct ApprovalBook<'a> {
    pub(crate) store: &'a dyn Store,
    /// Whether the request index is known to be ready, so that lookups need not read its mark.
    pub(crate) index_ready: &'a AtomicBool,
}

/// A stored approval and the exact bytes it was read from (the compare-and-swap witness).
pub(crate) struct StoredApproval {
    pub(crate) approval: Approval,
    pub(crate) bytes: Vec<u8>,
}

impl ApprovalBook<'_> {
    pub(crate) fn get(&self, id: &str) -> Result<Option<StoredApproval>, StoreError> {
        if crate::store::validate_key(id).is_err() {
            return Ok(None);
        }
        let Some(bytes) = self.store.get(NAMESPACE, id)? else {
            return Ok(None);
        };
        let approval: Approval = serde_json::from_slice(&bytes)
            .map_err(|error| StoreCorruptError::new(NAMESPACE, id, error.to_string()))?;
        Ok(Some(StoredApproval { approval, bytes }))
    }

    /// Every approval in the store. A corrupt record is an error; nothing is removed.
    pub(crate) fn all(&self) -> Result<Vec<StoredApproval>, StoreError> {
        let mut approvals = Vec::new();
        for id in self.store.list(NAMESPACE)? {
            if let Some(stored) = self.get(&id)? {
                approvals.push(stored);
            }
        }
        approvals.sort_by_key(|stored| stored.approval.created_ns);
        Ok(approvals)
    }

    /// The newest approval opened for a request identical to `request`, if it is live (pending,
    /// approved or rejected). A new approval is only opened when the newest one is not live, so no
    /// older one can be live unless two processes opened one at once, and then the newest is the
    /// one a reviewer is shown first.
    pub(crate) fn find_for(&self, request: &Request) -> Result<Option<StoredApproval>, StoreError> {
        if !self.index_ready.load(Ordering::Acquire) {
            if self.store.get(INDEX_NAMESPACE, INDEX_READY_KEY)?.is_none() {
                self.build_index()?;
            }
            self.index_ready.store(true, Ordering::Release);
        }
        let key = request_key(request);
        let Some(id) = self.store.get(INDEX_NAMESPACE, &key)? else {
            return Ok(None);
        };
        let id = String::from_utf8(id).map_err(|_| {
            StoreCorruptError::new(INDEX_NAMESPACE, &key, "the approval id is not UTF-8")
        })?;
        let Some(stored) = self.get(&id)? else {
            return Ok(None);
        };
        let is_live = matches!(
            stored.approval.state,
            ApprovalState::Pending
                | ApprovalState::Approved { .. }
                | ApprovalState::Rejected { .. }
        );
        Ok((is_live && stored.approval.request == *request).then_some(stored))
    }

    /// Indexes the approvals a store holds from before the index existed, newest last so that it
    /// wins, and marks the index ready. Two processes doing this at once write the same records.
    fn build_index(&self) -> Result<(), StoreError> {
        for stored in self.all()? {
            self.index(&stored.approval)?;
        }
        self.store.put(INDEX_NAMESPACE, INDEX_READY_KEY, b"1")
    }

    fn index(&self, approval: &Approval) -> Result<(), StoreError> {
        self.store.put(
            INDEX_NAMESPACE,
            &request_key(&approval.request),
            approval.id.as_bytes(),
        )
    }

    /// Stores a new approval and makes it its request's newest; false if its id was taken.
    pub(crate) fn create(&self, approval: &Approval) -> Result<bool, StoreError> {
        let bytes = encode(approval);
        let created = self
            .store
            .compare_and_swap(NAMESPACE, &approval.id, None, Some(&bytes))?;
        if created {
            self.index(approval)?;
        }
        Ok(created)
    }

    /// Moves `stored` to `state`; fails with a conflict when the record changed since it was read.
    pub(crate) fn transition(
        &self,
        stored: &StoredApproval,
        state: ApprovalState,
    ) -> Result<Approval, TransitionError> {
        let mut next = stored.approval.clone();
        next.state = state;
        let swapped = self.store.compare_and_swap(
            NAMESPACE,
            &next.id,
            Some(&stored.bytes),
            Some(&encode(&next)),
        )?;
        if swapped {
            Ok(next)
        } else {
            Err(TransitionError::Approval(ApprovalError::Conflict(next.id)))
        }
    }
}

/// A failed transition: the store failed, or someone else changed the record first.
pub(crate) enum TransitionError {
    Store(StoreError),
    Approval(ApprovalError),
}

impl From<StoreError> for TransitionError {
    fn from(error: StoreError) -> TransitionError {
        TransitionError::Store(error)
    }
}

/// The index key of a request: 32 hex digits of a BLAKE3 hash of its JSON, which holds every
/// field that makes two requests identical, with the keys of every object in order, since two
/// tool calls whose arguments differ only in key order are identical requests.
fn request_key(request: &Request) -> String {
    // INVARIANT: a request is plain data, which always serialises (see `encode`).
    let value = serde_json::to_value(request).unwrap_or_default();
    let mut hasher = blake3::Hasher::new();
    hash_canonical(&mut hasher, &value);
    hasher.finalize().to_hex()[..32].to_string()
}

fn hash_canonical(hasher: &mut blake3::Hasher, value: &serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            hasher.update(b"{");
            for (key, value) in entries {
                hash_canonical(hasher, &serde_json::Value::String(key.clone()));
                hasher.update(b":");
                hash_canonical(hasher, value);
                hasher.update(b",");
            }
            hasher.update(b"}");
        }
        serde_json::Value::Array(items) => {
            hasher.update(b"[");
            for item in items {
                hash_canonical(hasher, item);
                hasher.update(b",");
            }
            hasher.update(b"]");
        }
        // A scalar's JSON text: strings quoted and escaped, so no two values share one.
        scalar => {
            hasher.update(scalar.to_string().as_bytes());
        }
    }
}

fn encode(approval: &Approval) -> Vec<u8> {
    // INVARIANT: an approval is plain data (strings, numbers, a JSON request), which always
    // serialises.
    serde_json::to_vec_pretty(approval).unwrap_or_default()
}

/// A new approval id: `ap-` and 16 hex digits.
pub(crate) fn new_id(now_ns: u64) -> String {
    crate::event::random_id("ap", now_ns)
}
