//! Hints to the CPU to fetch memory into its caches before it is read.
//! Used where a pass over data is known to come back to memory that has
//! left the caches: the capture ahead of the reader, output held for
//! requests' responses, and the analysis table's next entry to evict. A
//! hint never faults and changes no result.

pub const CACHE_LINE: usize = 64;

/// Fetches the cache line holding `address`.
#[inline(always)]
pub fn line(address: *const u8) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: a prefetch is a hint: it never faults, whatever the address.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(address.cast()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = address;
}

/// Fetches the cache lines of the `len` bytes from `start`.
#[inline]
pub fn range(start: *const u8, len: usize) {
    for offset in (0..len).step_by(CACHE_LINE) {
        line(start.wrapping_add(offset));
    }
}
