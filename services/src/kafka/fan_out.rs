//! Work on several partitions at once, on scoped threads: a checkpoint after a catch-up
//! takes and sends a hundred thousand histories or more while the partition threads have
//! nothing to apply, and done on the consumer thread alone that left a core idle.

/// `f` of every item, in order: each on a thread of its own when `parallel`, otherwise
/// one after the other on this thread (as is an item whose thread cannot be started).
pub(crate) fn fan_out<T, R>(
    items: impl IntoIterator<Item = T>,
    parallel: bool,
    f: impl Fn(T) -> R + Sync,
) -> Vec<R>
where
    T: Copy + Send,
    R: Send,
{
    if !parallel {
        return items.into_iter().map(f).collect();
    }
    let f = &f;
    std::thread::scope(|s| {
        let running: Vec<_> = items
            .into_iter()
            .map(|item| {
                std::thread::Builder::new()
                    .name("dunghan-checkpt".into())
                    .spawn_scoped(s, move || f(item))
                    .map_err(|_| item)
            })
            .collect();
        running
            .into_iter()
            .map(|thread| match thread {
                // A panic goes on in the caller, as it would have without threads.
                Ok(h) => h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)),
                Err(item) => f(item),
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_item_is_done_once_and_the_results_keep_their_order() {
        for parallel in [false, true] {
            let names = std::sync::Mutex::new(Vec::new());
            let squares = fan_out(1..=6u64, parallel, |i| {
                names
                    .lock()
                    .unwrap()
                    .push(std::thread::current().name().map(str::to_owned));
                i * i
            });
            assert_eq!(squares, [1, 4, 9, 16, 25, 36]);
            let names = names.into_inner().unwrap();
            assert_eq!(names.len(), 6);
            let on_own_threads = names
                .iter()
                .all(|n| n.as_deref() == Some("dunghan-checkpt"));
            assert_eq!(on_own_threads, parallel, "{names:?}");
        }
    }
}
