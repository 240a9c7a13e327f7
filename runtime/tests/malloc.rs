//! glibc's mmap threshold stays fixed after a large buffer is freed
//! (`runtime/src/malloc.rs`), so later large buffers still return to the OS. Its own test
//! binary: the count of mapped blocks is process-wide.
#![cfg(all(target_os = "linux", target_env = "gnu"))]

use proofline_runtime::malloc::return_large_buffers_to_the_os;

/// Blocks the allocator serves with their own mapping, now.
fn mapped_blocks() -> usize {
    // SAFETY: mallinfo2 only reads the allocator's statistics.
    unsafe { libc::mallinfo2() }.hblks
}

#[test]
fn a_freed_large_buffer_does_not_raise_the_mmap_threshold() {
    assert!(return_large_buffers_to_the_os());
    // By default, freeing this would raise the threshold to 8 MiB.
    drop(std::hint::black_box(vec![1u8; 8 << 20]));
    let before = mapped_blocks();
    let buffer = std::hint::black_box(vec![1u8; 1 << 20]);
    assert_eq!(
        mapped_blocks(),
        before + 1,
        "a 1 MiB buffer after a freed 8 MiB one must get its own mapping"
    );
    drop(buffer);
    assert_eq!(mapped_blocks(), before, "and give it back when freed");
}
