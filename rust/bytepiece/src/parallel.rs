//! Thread pools: one rayon pool per requested thread count, built once and reused.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use rayon::{ThreadPool, ThreadPoolBuilder};

use crate::error::{Error, Result};

/// Runs `f` on a pool of `threads` threads (`None`: one per available core).
pub fn run_with_threads<R: Send>(threads: Option<usize>, f: impl FnOnce() -> R + Send) -> Result<R> {
    let threads = match threads {
        Some(0) => {
            return Err(Error::InvalidArgument(
                "the number of threads must be at least 1".into(),
            ))
        }
        Some(n) => n,
        None => default_threads(),
    };
    Ok(pool(threads)?.install(f))
}

/// The number of threads used when none is given: the available cores.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn pool(threads: usize) -> Result<Arc<ThreadPool>> {
    static POOLS: OnceLock<Mutex<HashMap<usize, Arc<ThreadPool>>>> = OnceLock::new();
    let mut pools = POOLS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(p) = pools.get(&threads) {
        return Ok(p.clone());
    }
    let p = Arc::new(
        ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("bytepiece-{i}"))
            .build()
            .map_err(|e| Error::InvalidArgument(format!("cannot start {threads} threads: {e}")))?,
    );
    pools.insert(threads, p.clone());
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_on_the_requested_number_of_threads() {
        assert_eq!(run_with_threads(Some(3), rayon::current_num_threads).unwrap(), 3);
        assert!(run_with_threads(Some(0), || ()).is_err());
    }
}
