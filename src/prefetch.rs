//! Hints to the CPU to fetch memory into its caches before it is read.
//! Used where a pass over data is known to come back to memory that has
//! left the caches: the capture ahead of the reader, and frames held for
//! output. A hint never faults and changes no result.

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

/// Fetches every cache line of `bytes`.
#[inline]
pub fn bytes(bytes: &[u8]) {
    for offset in (0..bytes.len()).step_by(CACHE_LINE) {
        line(bytes.as_ptr().wrapping_add(offset));
    }
}

/// Fetches every cache line of `value` itself (not what it points to).
#[inline]
pub fn value<T>(value: &T) {
    let start = (value as *const T).cast::<u8>();
    for offset in (0..std::mem::size_of::<T>()).step_by(CACHE_LINE) {
        line(start.wrapping_add(offset));
    }
}
