//! Work prepared on other threads ahead of the item applied in order.
//!
//! A put's splitting, token counting, signing and analysing need no lock and are most of its
//! work; swapping it into the store must follow the order of the puts. [`in_order`] runs the
//! first part on every core, a bounded number of items ahead, and hands the results to the
//! second part one by one, in the items' order.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::thread::Result as Caught;

/// How many threads [`in_order`] prepares on: the machine's cores, at most 8.
fn n_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(8))
}

/// Calls `apply` with each of `items` and what `prepare` made of it, in the items' order, and
/// stops at the first error `apply` returns. With more than one core and item, `prepare` runs on
/// other threads, at most `ahead` items ahead of the one applied (so at most that many prepared
/// results wait in memory); otherwise everything runs on this thread, in turn.
pub(super) fn in_order<T, R, E>(
    items: &[T],
    ahead: usize,
    prepare: impl Fn(&T) -> R + Sync,
    mut apply: impl FnMut(&T, R) -> Result<(), E>,
) -> Result<(), E>
where
    T: Sync,
    R: Send,
{
    let n_threads = n_threads();
    if n_threads < 2 || items.len() < 2 || ahead == 0 {
        for item in items {
            apply(item, prepare(item))?;
        }
        return Ok(());
    }
    let prepare = &prepare;
    std::thread::scope(|scope| {
        let (jobs, job_queue) = crossbeam_channel::unbounded::<usize>();
        let (results, result_queue) = crossbeam_channel::unbounded::<(usize, Caught<R>)>();
        for _ in 0..n_threads {
            let job_queue = job_queue.clone();
            let results = results.clone();
            scope.spawn(move || {
                for idx in job_queue {
                    let Some(item) = items.get(idx) else {
                        continue;
                    };
                    // A panic is handed over to be raised on the applying thread, as it would be
                    // with one thread; left here, it would leave that thread waiting for good.
                    let prepared = catch_unwind(AssertUnwindSafe(|| prepare(item)));
                    if results.send((idx, prepared)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(results);
        let mut next_job = 0;
        while next_job < items.len().min(ahead) {
            let _ = jobs.send(next_job);
            next_job += 1;
        }
        let mut waiting: BTreeMap<usize, Caught<R>> = BTreeMap::new();
        for (idx, item) in items.iter().enumerate() {
            let prepared = loop {
                if let Some(prepared) = waiting.remove(&idx) {
                    break Some(prepared);
                }
                match result_queue.recv() {
                    Ok((done, prepared)) => {
                        waiting.insert(done, prepared);
                    }
                    // Every worker has stopped, which they do only once the jobs end: not before
                    // the last item is applied. Prepared here should it ever happen.
                    Err(_) => break None,
                }
            };
            let prepared = match prepared {
                Some(Ok(prepared)) => prepared,
                Some(Err(panic)) => resume_unwind(panic),
                None => prepare(item),
            };
            if next_job < items.len() {
                let _ = jobs.send(next_job);
                next_job += 1;
            }
            // Returning drops the job queue, so the workers stop after the item at hand.
            apply(item, prepared)?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn applies_every_item_in_order() {
        let items: Vec<u32> = (0..500).collect();
        let mut applied = Vec::new();
        let result: Result<(), ()> = in_order(
            &items,
            7,
            |n| n * 2,
            |item, doubled| {
                assert_eq!(*item * 2, doubled);
                applied.push(*item);
                Ok(())
            },
        );
        assert_eq!(result, Ok(()));
        assert_eq!(applied, items);
    }

    #[test]
    fn stops_at_the_first_error_and_prepares_little_past_it() {
        let items: Vec<u32> = (0..1_000).collect();
        let prepared = AtomicUsize::new(0);
        let mut applied = Vec::new();
        let result = in_order(
            &items,
            4,
            |n| {
                prepared.fetch_add(1, Ordering::Relaxed);
                *n
            },
            |item, _| {
                if *item == 10 {
                    return Err(format!("item {item}"));
                }
                applied.push(*item);
                Ok(())
            },
        );
        assert_eq!(result, Err("item 10".to_string()));
        assert_eq!(applied, (0..10).collect::<Vec<_>>());
        // Ten applied, the failing one, at most `ahead` queued past it, and one per thread
        // that had taken a job when the queue closed.
        assert!(prepared.load(Ordering::Relaxed) <= 11 + 4 + n_threads());
    }

    #[test]
    fn a_panic_in_prepare_reaches_the_caller() {
        let items: Vec<u32> = (0..100).collect();
        let caught = catch_unwind(|| {
            let _: Result<(), ()> =
                in_order(&items, 8, |n| assert_ne!(*n, 30, "thirty"), |_, _| Ok(()));
        });
        assert!(caught.is_err());
    }

    #[test]
    fn no_items_apply_nothing() {
        let result: Result<(), ()> = in_order(&[] as &[u8], 8, |_| (), |_, _| panic!("applied"));
        assert_eq!(result, Ok(()));
    }
}
