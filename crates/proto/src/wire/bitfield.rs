//! A fixed-length set of piece indices, stored as the wire protocol sends it: bit 7 of byte 0 is piece 0.
//!
//! Invariant: the spare bits after the last piece are always zero, so the bytes can be sent as they are
//! and two bitfields of the same length compare equal exactly when they hold the same pieces.

use std::fmt;

#[derive(Clone, PartialEq, Eq, Default)]
pub struct Bitfield {
    bits: Vec<u8>,
    len: usize,
    ones: usize,
}

/// Why a received bitfield was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BitfieldError {
    #[error("bitfield is {got} bytes, expected {expected} for {pieces} pieces")]
    WrongLength {
        got: usize,
        expected: usize,
        pieces: usize,
    },
    #[error("bitfield has spare bits set after piece {0}")]
    SpareBits(usize),
}

impl Bitfield {
    /// `len` pieces, none set.
    pub fn new(len: usize) -> Self {
        Bitfield {
            bits: vec![0; len.div_ceil(8)],
            len,
            ones: 0,
        }
    }

    /// `len` pieces, all set.
    pub fn full(len: usize) -> Self {
        let mut b = Self::new(len);
        b.bits.fill(0xff);
        b.clear_spare();
        b.ones = len;
        b
    }

    /// Takes a bitfield as received, refusing a wrong length or spare bits set.
    pub fn from_bytes(bytes: &[u8], len: usize) -> Result<Self, BitfieldError> {
        let expected = len.div_ceil(8);
        if bytes.len() != expected {
            return Err(BitfieldError::WrongLength {
                got: bytes.len(),
                expected,
                pieces: len,
            });
        }
        let spare = expected * 8 - len;
        if spare > 0 && bytes[expected - 1] & ((1u8 << spare) - 1) != 0 {
            return Err(BitfieldError::SpareBits(len));
        }
        let ones = bytes.iter().map(|b| b.count_ones() as usize).sum();
        Ok(Bitfield {
            bits: bytes.to_vec(),
            len,
            ones,
        })
    }

    fn clear_spare(&mut self) {
        let spare = self.bits.len() * 8 - self.len;
        if spare > 0 {
            if let Some(last) = self.bits.last_mut() {
                *last &= !((1u8 << spare) - 1);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether piece `i` is set; out of range is `false`.
    pub fn get(&self, i: usize) -> bool {
        i < self.len && self.bits[i / 8] & (0x80 >> (i % 8)) != 0
    }

    /// Sets piece `i`; returns whether it was newly set. Out of range is ignored.
    pub fn set(&mut self, i: usize) -> bool {
        if i >= self.len || self.get(i) {
            return false;
        }
        self.bits[i / 8] |= 0x80 >> (i % 8);
        self.ones += 1;
        true
    }

    /// Clears piece `i`; returns whether it was set.
    pub fn clear(&mut self, i: usize) -> bool {
        if !self.get(i) {
            return false;
        }
        self.bits[i / 8] &= !(0x80 >> (i % 8));
        self.ones -= 1;
        true
    }

    /// Number of pieces set.
    pub fn count(&self) -> usize {
        self.ones
    }

    pub fn is_full(&self) -> bool {
        self.ones == self.len
    }

    pub fn none(&self) -> bool {
        self.ones == 0
    }

    /// The wire bytes (spare bits zero).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bits
    }

    /// Indices of the pieces set, ascending.
    pub fn ones(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.len).filter(move |&i| self.get(i))
    }

    /// Whether every piece of `range` is set (an empty range: `true`; past the end: `false`). Whole
    /// bytes are compared at once, so a file's thousands of pieces cost a few dozen comparisons.
    pub fn all_in(&self, range: std::ops::Range<usize>) -> bool {
        if range.end > self.len {
            return false;
        }
        let (mut i, end) = (range.start, range.end);
        while i < end {
            if i % 8 == 0 && end - i >= 8 {
                if self.bits[i / 8] != 0xff {
                    return false;
                }
                i += 8;
            } else {
                if !self.get(i) {
                    return false;
                }
                i += 1;
            }
        }
        true
    }

    /// Whether `self` has a piece that `other` lacks.
    pub fn has_any_missing_from(&self, other: &Bitfield) -> bool {
        self.bits
            .iter()
            .zip(other.bits.iter().chain(std::iter::repeat(&0)))
            .any(|(a, b)| a & !b != 0)
    }
}

impl fmt::Debug for Bitfield {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Bitfield({}/{})", self.ones, self.len)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn all_in_looks_at_the_range_alone() {
        let mut b = Bitfield::new(40);
        for i in 3..37 {
            b.set(i);
        }
        assert!(b.all_in(3..37) && b.all_in(8..16) && b.all_in(5..5) && b.all_in(36..37));
        assert!(!b.all_in(2..37) && !b.all_in(3..38) && !b.all_in(0..40) && !b.all_in(39..41));
        b.clear(20);
        assert!(!b.all_in(3..37) && b.all_in(3..20) && b.all_in(21..37));
    }

    use super::*;

    #[test]
    fn set_get_count_and_wire_layout() {
        let mut b = Bitfield::new(10);
        assert!(b.set(0));
        assert!(!b.set(0));
        assert!(b.set(9));
        assert!(!b.set(10));
        assert_eq!(b.as_bytes(), &[0x80, 0x40]);
        assert_eq!(b.count(), 2);
        assert_eq!(b.ones().collect::<Vec<_>>(), vec![0, 9]);
        assert!(b.clear(0));
        assert_eq!(b.count(), 1);
        assert_eq!(Bitfield::full(10).as_bytes(), &[0xff, 0xc0]);
        assert!(Bitfield::full(10).is_full());
    }

    #[test]
    fn refuses_wrong_length_and_spare_bits() {
        assert!(Bitfield::from_bytes(&[0xff, 0xc0], 10).unwrap().is_full());
        assert_eq!(
            Bitfield::from_bytes(&[0xff], 10),
            Err(BitfieldError::WrongLength {
                got: 1,
                expected: 2,
                pieces: 10
            })
        );
        assert_eq!(
            Bitfield::from_bytes(&[0xff, 0xe0], 10),
            Err(BitfieldError::SpareBits(10))
        );
        assert!(Bitfield::from_bytes(&[0xff, 0xff, 0], 10).is_err());
        assert!(Bitfield::from_bytes(&[0xff], 8).unwrap().is_full());
    }

    #[test]
    fn missing_from() {
        let mut a = Bitfield::new(12);
        let mut b = Bitfield::new(12);
        a.set(3);
        assert!(a.has_any_missing_from(&b));
        b.set(3);
        assert!(!a.has_any_missing_from(&b));
    }
}
