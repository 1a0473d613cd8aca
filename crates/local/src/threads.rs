//! How many threads the local engine's kernels use: all cores unless told otherwise
//! (`set`, e.g. from `--threads N`). The quantized products and attention share one pool
//! of that many threads. Thread count never changes a result: work is split by output
//! columns or rows, each computed in the same order by whichever thread runs it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// 0: all cores.
static WANTED: AtomicUsize = AtomicUsize::new(0);
static POOL: Mutex<Option<Arc<rayon::ThreadPool>>> = Mutex::new(None);

/// Uses `n` threads from now on (0: all cores).
pub fn set(n: usize) {
    WANTED.store(n, Ordering::Relaxed);
}

/// The number of threads the kernels use.
pub fn count() -> usize {
    match WANTED.load(Ordering::Relaxed) {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
}

/// The pool of `count()` threads (rebuilt when the count changes).
pub(crate) fn pool() -> Arc<rayon::ThreadPool> {
    let n = count();
    let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
    match &*pool {
        Some(p) if p.current_num_threads() == n => p.clone(),
        _ => {
            let p = Arc::new(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(n)
                    .thread_name(|i| format!("shammie-kernel-{i}"))
                    .build()
                    .expect("build the kernel thread pool"),
            );
            *pool = Some(p.clone());
            p
        }
    }
}
