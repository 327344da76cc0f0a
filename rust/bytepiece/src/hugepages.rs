//! A global allocator for programs built on this crate (the Python bindings install it) that
//! asks Linux to back large blocks with transparent huge pages.
//!
//! Training looks up and counts n-grams and pieces in hash tables of hundreds of megabytes, at
//! random: with 4 KiB pages nearly every look-up also misses the TLB. Where the kernel's
//! transparent huge pages are in `madvise` mode (a common default), a block is only backed by
//! 2 MiB pages if asked (`docs/DESIGN.md`, *Count tables*). Allocation itself is the system
//! allocator's; elsewhere than Linux this is it, unchanged.

use std::alloc::{GlobalAlloc, Layout, System};

/// The system allocator, with blocks of [`HugePageAlloc::THRESHOLD`] bytes or more advised to
/// use huge pages. Install it with `#[global_allocator]`.
#[derive(Debug, Default, Clone, Copy)]
pub struct HugePageAlloc;

impl HugePageAlloc {
    /// The smallest block advised (smaller ones would waste most of a huge page).
    pub const THRESHOLD: usize = 8 << 20;
}

// SAFETY: every method forwards to `System` with the same arguments; the advice only concerns
// whole huge pages inside the block just returned, and changes no byte of memory.
unsafe impl GlobalAlloc for HugePageAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is `System`'s.
        let p = unsafe { System.alloc(layout) };
        advise(p, layout.size());
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as `alloc`.
        let p = unsafe { System.alloc_zeroed(layout) };
        advise(p, layout.size());
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` (through this allocator) with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as `dealloc`.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        advise(p, new_size);
        p
    }
}

/// Advises the huge pages that lie wholly inside `[p, p + size)`, for large blocks.
#[inline]
fn advise(p: *mut u8, size: usize) {
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        if p.is_null() || size < HugePageAlloc::THRESHOLD {
            return;
        }
        let start = (p as usize).next_multiple_of(HUGE);
        let end = (p as usize + size) & !(HUGE - 1);
        if end > start {
            // SAFETY: the range lies inside a block this process owns; MADV_HUGEPAGE is only a
            // hint (an error, e.g. where THP is disabled, changes nothing and is ignored).
            unsafe {
                libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (p, size);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocates_reallocates_and_frees_blocks_of_any_size() {
        let a = HugePageAlloc;
        for size in [1usize, 4096, HugePageAlloc::THRESHOLD, HugePageAlloc::THRESHOLD * 2 + 12345] {
            let layout = Layout::from_size_align(size, 64).unwrap();
            // SAFETY: a non-zero layout; the block is written within bounds, then freed with its
            // own layout.
            unsafe {
                let p = a.alloc_zeroed(layout);
                assert!(!p.is_null());
                assert_eq!(*p.add(size - 1), 0);
                *p.add(size - 1) = 7;
                let q = a.realloc(p, layout, size * 2);
                assert_eq!(*q.add(size - 1), 7);
                a.dealloc(q, Layout::from_size_align(size * 2, 64).unwrap());
            }
        }
    }
}
