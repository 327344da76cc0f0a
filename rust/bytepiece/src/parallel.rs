//! Thread pools: one rayon pool per requested thread count, built once per process and reused.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use rayon::{ThreadPool, ThreadPoolBuilder};

use crate::error::{Error, Result};

/// Runs `f` on a pool of `threads` threads (`None`: one per available core).
pub fn run_with_threads<R: Send>(threads: Option<usize>, f: impl FnOnce() -> R + Send) -> Result<R> {
    let threads = match threads {
        Some(0) => return Err(Error::InvalidArgument("the number of threads must be at least 1".into())),
        Some(n) => n,
        None => default_threads(),
    };
    Ok(pool(threads)?.install(f))
}

/// The number of threads used when none is given: the available cores.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The pools built so far, by number of threads, and the process that built them.
struct Pools {
    pid: u32,
    by_threads: BTreeMap<usize, Arc<ThreadPool>>,
}

static POOLS: Mutex<Pools> = Mutex::new(Pools { pid: 0, by_threads: BTreeMap::new() });

fn lock_pools() -> MutexGuard<'static, Pools> {
    POOLS.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The pool of `threads` threads of this process.
///
/// A child made by `fork` (Python's `multiprocessing`, PyTorch's `DataLoader` workers) inherits
/// the parent's pools without their threads: `install` on one of them would wait forever. So the
/// pools remember the process that built them, and a different process forgets them (leaks them:
/// dropping would signal threads that do not exist) and builds its own. The map's lock is held
/// across `fork` (see [`hold_across_fork`]), so a child never inherits it locked.
fn pool(threads: usize) -> Result<Arc<ThreadPool>> {
    hold_across_fork();
    let mut pools = lock_pools();
    let pid = std::process::id();
    if pools.pid != pid {
        std::mem::forget(std::mem::take(&mut pools.by_threads));
        pools.pid = pid;
    }
    if let Some(p) = pools.by_threads.get(&threads) {
        return Ok(p.clone());
    }
    let p = Arc::new(
        ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("bytepiece-{i}"))
            .build()
            .map_err(|e| Error::InvalidArgument(format!("cannot start {threads} threads: {e}")))?,
    );
    pools.by_threads.insert(threads, p.clone());
    Ok(p)
}

/// Registers (once) `fork` handlers that take the pools' lock before a `fork` and release it
/// after, in the parent and in the child: without them, a `fork` while another thread holds the
/// lock would leave it locked forever in the child.
#[cfg(target_os = "linux")]
fn hold_across_fork() {
    use std::cell::RefCell;
    use std::sync::Once;

    thread_local! {
        // the guard taken before `fork`, released by the thread that forked (in the parent) and
        // by the child's only thread, its copy
        static HELD: RefCell<Option<MutexGuard<'static, Pools>>> = const { RefCell::new(None) };
    }
    extern "C" fn prepare() {
        let guard = lock_pools();
        HELD.with(|held| *held.borrow_mut() = Some(guard));
    }
    extern "C" fn release() {
        HELD.with(|held| drop(held.borrow_mut().take()));
    }
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        // SAFETY: the handlers are `extern "C"` functions that neither unwind nor fork; a
        // failure to register (ENOMEM) only leaves the lock unprotected, as before.
        unsafe {
            libc::pthread_atfork(Some(prepare), Some(release), Some(release));
        }
    });
}

#[cfg(not(target_os = "linux"))]
fn hold_across_fork() {}

#[cfg(test)]
mod tests {
    use super::*;
    use rayon::prelude::*;

    #[test]
    fn runs_on_the_requested_number_of_threads() {
        assert_eq!(run_with_threads(Some(3), rayon::current_num_threads).unwrap(), 3);
        assert!(run_with_threads(Some(0), || ()).is_err());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_forked_child_gets_pools_of_its_own() {
        // the parent's pool has threads running; the child's copy of it has none
        let sum = |n: u64| run_with_threads(Some(2), || (0..n).into_par_iter().sum::<u64>()).unwrap();
        assert_eq!(sum(1000), 499500);
        // SAFETY: the child only runs Rust code that the lock handlers make safe, then `_exit`s.
        let child = unsafe { libc::fork() };
        assert!(child >= 0, "fork failed");
        if child == 0 {
            unsafe {
                // a deadlock in the child becomes a SIGALRM death instead of a hung test
                libc::alarm(20);
                let ok = sum(1000) == 499500 && run_with_threads(Some(3), rayon::current_num_threads).unwrap() == 3;
                libc::_exit(if ok { 0 } else { 1 });
            }
        }
        let mut status = 0;
        // SAFETY: waits for the child made above.
        assert_eq!(unsafe { libc::waitpid(child, &mut status, 0) }, child);
        assert!(libc::WIFEXITED(status), "the child did not exit normally (status {status}): deadlocked?");
        assert_eq!(libc::WEXITSTATUS(status), 0);
        // the parent's pool still works
        assert_eq!(sum(10), 45);
    }
}
