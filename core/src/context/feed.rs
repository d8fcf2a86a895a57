//! [`ChangeFeed`]: a subscription to a store's changes, with a close that wakes its waiters and a
//! count of the changes it missed.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError};
use parking_lot::Mutex;

use super::model::ContextChange;

/// How many changes a feed holds for its reader before it misses the later ones.
pub const FEED_CAPACITY: usize = 1024;

/// The changes to a [`ContextStore`](super::ContextStore) since
/// [`subscribe`](super::ContextStore::subscribe), oldest first: each put, delete and record.
///
/// A feed holds up to [`FEED_CAPACITY`] changes; a reader that falls that far behind misses the
/// later ones until it reads again, and [`missed`](Self::missed) counts them (the reader can then
/// ask [`changed_since`](super::ContextStore::changed_since) what changed in what it holds).
/// Clones share the feed: a change goes to one of them, and [`close`](Self::close) on any of them
/// closes all. The store stops sending to a closed or dropped feed.
#[derive(Clone, Debug)]
pub struct ChangeFeed {
    changes: Receiver<ContextChange>,
    /// Disconnected by `close`, which wakes every wait at once.
    closing: Receiver<()>,
    state: Arc<FeedState>,
}

#[derive(Debug)]
struct FeedState {
    closed: AtomicBool,
    /// Dropped by `close`.
    close: Mutex<Option<Sender<()>>>,
    missed: AtomicU64,
}

/// The store's end of a feed.
#[derive(Debug)]
pub(super) struct Subscriber {
    changes: Sender<ContextChange>,
    state: Arc<FeedState>,
}

impl Subscriber {
    /// Sends `change`, counting it as missed if the feed is full; false once the feed is closed
    /// or dropped, so that the store forgets it.
    pub(super) fn send(&self, change: &ContextChange) -> bool {
        if self.state.closed.load(Ordering::Acquire) {
            return false;
        }
        match self.changes.try_send(change.clone()) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                self.state.missed.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(TrySendError::Disconnected(_)) => false,
        }
    }
}

/// A new feed and the store's end of it.
pub(super) fn channel() -> (Subscriber, ChangeFeed) {
    let (sender, changes) = crossbeam_channel::bounded(FEED_CAPACITY);
    let (close, closing) = crossbeam_channel::bounded(0);
    let state = Arc::new(FeedState {
        closed: AtomicBool::new(false),
        close: Mutex::new(Some(close)),
        missed: AtomicU64::new(0),
    });
    (
        Subscriber {
            changes: sender,
            state: Arc::clone(&state),
        },
        ChangeFeed {
            changes,
            closing,
            state,
        },
    )
}

impl ChangeFeed {
    /// The next change waiting now, if any (`None` once closed).
    pub fn try_next(&self) -> Option<ContextChange> {
        if self.is_closed() {
            return None;
        }
        self.changes.try_recv().ok()
    }

    /// Every change waiting now, oldest first, without waiting for more (nothing once closed).
    pub fn drain(&self) -> Vec<ContextChange> {
        std::iter::from_fn(|| self.try_next()).collect()
    }

    /// The next change, waiting until one comes; `None` once the feed is closed (also from
    /// another thread, which wakes this one) or the store is dropped and its changes read.
    pub fn next(&self) -> Option<ContextChange> {
        self.next_until(None)
    }

    /// [`next`](Self::next), waiting at most `timeout`.
    pub fn next_timeout(&self, timeout: Duration) -> Option<ContextChange> {
        // A wait too long to add to now is a wait without end.
        self.next_until(Instant::now().checked_add(timeout))
    }

    /// [`next`](Self::next), waiting until `deadline` (`None`: no limit).
    pub fn next_until(&self, deadline: Option<Instant>) -> Option<ContextChange> {
        match self.wait(deadline) {
            Waited::Change(change) => Some(change),
            Waited::Timeout | Waited::Ended => None,
        }
    }

    /// [`next_until`](Self::next_until), calling `check` every `every` of the wait, so that a
    /// caller can end it early with an error: a Python binding checks for Ctrl-C there.
    pub fn next_checking<E>(
        &self,
        deadline: Option<Instant>,
        every: Duration,
        mut check: impl FnMut() -> Result<(), E>,
    ) -> Result<Option<ContextChange>, E> {
        loop {
            let now = Instant::now();
            let slice_end = now.checked_add(every);
            let slice_end = match (deadline, slice_end) {
                (Some(deadline), Some(slice_end)) => Some(deadline.min(slice_end)),
                (Some(deadline), None) => Some(deadline),
                (None, slice_end) => slice_end,
            };
            match self.wait(slice_end) {
                Waited::Change(change) => return Ok(Some(change)),
                Waited::Ended => return Ok(None),
                Waited::Timeout => {}
            }
            check()?;
            if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                return Ok(None);
            }
        }
    }

    fn wait(&self, deadline: Option<Instant>) -> Waited {
        if self.is_closed() {
            return Waited::Ended;
        }
        // A change already waiting comes before a close that raced it.
        if let Ok(change) = self.changes.try_recv() {
            return Waited::Change(change);
        }
        let mut select = crossbeam_channel::Select::new();
        let changes = select.recv(&self.changes);
        let closing = select.recv(&self.closing);
        let ready = match deadline {
            None => Ok(select.select()),
            Some(deadline) => select.select_deadline(deadline),
        };
        let Ok(ready) = ready else {
            return Waited::Timeout;
        };
        match ready.index() {
            index if index == changes => match ready.recv(&self.changes) {
                Ok(change) if !self.is_closed() => Waited::Change(change),
                _ => Waited::Ended,
            },
            index => {
                debug_assert_eq!(index, closing);
                // Only a disconnect comes this way: nothing is sent on `closing`.
                let _ = ready.recv(&self.closing);
                Waited::Ended
            }
        }
    }

    /// Closes the feed (and its clones): waits end with `None` at once, later reads give
    /// nothing, and the store stops sending to it.
    pub fn close(&self) {
        self.state.closed.store(true, Ordering::Release);
        self.state.close.lock().take();
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.state.closed.load(Ordering::Acquire)
    }

    /// How many changes are waiting to be read.
    pub fn len(&self) -> usize {
        if self.is_closed() {
            0
        } else {
            self.changes.len()
        }
    }

    /// Whether no change is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many changes this feed missed because [`FEED_CAPACITY`] changes were already waiting.
    pub fn missed(&self) -> u64 {
        self.state.missed.load(Ordering::Relaxed)
    }

    /// The changes as they come, until the feed is closed or the store is dropped.
    pub fn iter(&self) -> impl Iterator<Item = ContextChange> + '_ {
        std::iter::from_fn(|| self.next())
    }
}

enum Waited {
    Change(ContextChange),
    Timeout,
    Ended,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(version: u64) -> ContextChange {
        ContextChange {
            key: "docs/a.md".to_string(),
            version: Some(version),
            changed_sections: Vec::new(),
            removed_sections: Vec::new(),
        }
    }

    #[test]
    fn the_store_forgets_a_closed_or_dropped_feed() {
        let (subscriber, feed) = channel();
        assert!(subscriber.send(&change(1)));
        feed.clone().close();
        assert!(feed.is_closed(), "a clone's close closes the feed");
        assert!(!subscriber.send(&change(2)));
        let (subscriber, feed) = channel();
        drop(feed);
        assert!(!subscriber.send(&change(1)));
    }

    #[test]
    fn a_change_waiting_before_a_close_is_not_given_after_it() {
        let (subscriber, feed) = channel();
        assert!(subscriber.send(&change(1)));
        feed.close();
        assert_eq!(feed.next_until(None), None);
        assert_eq!(feed.try_next(), None);
    }
}
