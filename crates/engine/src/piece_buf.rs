//! The memory a piece is assembled in: one buffer of a piece's length, aligned to
//! [`PieceBuf::ALIGN`] bytes, so a verified piece can be written to disk with direct I/O (which wants
//! the memory, the file offset and the length aligned) straight from where it was assembled.
//!
//! A buffer is zeroed when it is made and keeps its length for life; the picker recycles them.

use std::ops::{Deref, DerefMut};

/// One aligned page of bytes; a buffer is a vector of them.
#[derive(Clone, Copy)]
#[repr(C, align(4096))]
struct Page([u8; PieceBuf::ALIGN]);

/// A zero-initialised byte buffer whose first byte is aligned to [`PieceBuf::ALIGN`].
#[derive(Clone)]
pub struct PieceBuf {
    pages: Vec<Page>,
    len: usize,
}

impl PieceBuf {
    /// Alignment of the buffer's start: the page size, which also satisfies every block device's
    /// direct-I/O alignment.
    pub const ALIGN: usize = 4096;

    /// A buffer of `len` zero bytes.
    pub fn zeroed(len: usize) -> Self {
        PieceBuf {
            pages: vec![Page([0; Self::ALIGN]); len.div_ceil(Self::ALIGN)],
            len,
        }
    }
}

impl Deref for PieceBuf {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        // SAFETY: `pages` holds at least `len` initialised bytes (`Page` is a plain byte array with no
        // padding), and the slice borrows `self`, so the vector cannot move or change meanwhile.
        unsafe { std::slice::from_raw_parts(self.pages.as_ptr().cast::<u8>(), self.len) }
    }
}

impl DerefMut for PieceBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `deref`, with the exclusive borrow of `self` making the slice the only access.
        unsafe { std::slice::from_raw_parts_mut(self.pages.as_mut_ptr().cast::<u8>(), self.len) }
    }
}

impl std::fmt::Debug for PieceBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PieceBuf({} bytes)", self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_zeroed_and_of_the_asked_length() {
        for len in [1, 1000, 4096, 16384 + 7, 1 << 20] {
            let mut b = PieceBuf::zeroed(len);
            assert_eq!(b.len(), len);
            assert_eq!(b.as_ptr() as usize % PieceBuf::ALIGN, 0);
            assert!(b.iter().all(|&x| x == 0));
            b[len - 1] = 7;
            assert_eq!(b.clone()[len - 1], 7);
        }
    }
}
