//! Large buffers go back to the operating system when they are freed.
//!
//! glibc serves an allocation of at least `M_MMAP_THRESHOLD` (128 KiB) with its own
//! `mmap`, unmapped on free, but by default it raises that threshold to the size of the
//! largest such block freed (up to 32 MiB), and the trim threshold to twice that. After
//! the leader frees one manifest part's JSON (about 8 MB), every later buffer of that
//! size is carved out of the heap arenas, one per thread, and the memory stays with the
//! process: a million-segment job peaked at 112 MB of RSS for about 40 MB of live heap.
//! Fixing the threshold keeps it at 128 KiB: 62 MB, at no measurable cost in time
//! (`docs/BENCHMARKS.md`, section 8).

/// The threshold at which allocations get their own mapping: glibc's default, fixed.
pub const MMAP_THRESHOLD: usize = 128 * 1024;

/// Fix glibc's mmap threshold at [`MMAP_THRESHOLD`]. Call once, first thing in `main`.
/// Returns whether the allocator took the setting (always `false` off glibc).
pub fn return_large_buffers_to_the_os() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only changes a tuning parameter of the allocator; it is safe
        // to call at any time, from any thread.
        unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD as libc::c_int) == 1 }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}
