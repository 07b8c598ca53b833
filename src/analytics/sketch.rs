//! How many different emails did something, without a list of which: a
//! HyperLogLog sketch (Flajolet et al. 2007, with the small-range correction).
//!
//! What goes in is the random tag of one email, drawn when it was written and
//! kept nowhere else, so the sketch cannot be asked about a reader: nothing
//! maps a reader to a tag. 4,096 one-byte registers give a standard error of
//! 1.04 / √4096 ≈ 1.6 %, and counts up to a few hundred are close to exact.
//!
//! The tags are already uniform 64-bit values (random, then carried under a
//! MAC), so the sketch takes them as they are instead of hashing again, and
//! stores its registers as plain bytes that both databases keep as a blob.

/// Bits of the tag that choose a register.
const P: u32 = 12;
/// Registers, one byte each: the size of a stored sketch.
pub const SKETCH_BYTES: usize = 1 << P;

#[derive(Clone, PartialEq, Eq)]
pub struct Sketch {
    registers: Box<[u8; SKETCH_BYTES]>,
}

impl std::fmt::Debug for Sketch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sketch(~{})", self.estimate())
    }
}

impl Default for Sketch {
    fn default() -> Sketch {
        Sketch {
            registers: Box::new([0; SKETCH_BYTES]),
        }
    }
}

impl Sketch {
    /// A stored sketch; `None` when the bytes are not one (another size).
    pub fn from_bytes(bytes: &[u8]) -> Option<Sketch> {
        let registers: [u8; SKETCH_BYTES] = bytes.try_into().ok()?;
        Some(Sketch {
            registers: Box::new(registers),
        })
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.registers[..]
    }

    /// Counts `tag` (a uniform 64-bit value) once, however often it comes.
    pub fn insert(&mut self, tag: u64) {
        let register = (tag >> (64 - P)) as usize;
        // The rank of the first 1 bit in the rest; the low guard bit caps it.
        let rest = (tag << P) | (1 << (P - 1));
        let rank = rest.leading_zeros() as u8 + 1;
        let slot = &mut self.registers[register];
        *slot = (*slot).max(rank);
    }

    /// Adds everything `other` has counted.
    pub fn merge(&mut self, other: &Sketch) {
        for (mine, theirs) in self.registers.iter_mut().zip(other.registers.iter()) {
            *mine = (*mine).max(*theirs);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.registers.iter().all(|&r| r == 0)
    }

    /// The number of different tags inserted, within the sketch's error.
    pub fn estimate(&self) -> u64 {
        let m = SKETCH_BYTES as f64;
        let alpha = 0.7213 / (1.0 + 1.079 / m);
        let (sum, zeros) = self.registers.iter().fold((0.0, 0u32), |(sum, zeros), &r| {
            (sum + 2f64.powi(-i32::from(r)), zeros + u32::from(r == 0))
        });
        let raw = alpha * m * m / sum;
        // Few tags: most registers are still empty, and counting them
        // (linear counting) is far closer than the raw estimate.
        let estimate = if raw <= 2.5 * m && zeros > 0 {
            m * (m / f64::from(zeros)).ln()
        } else {
            raw
        };
        estimate.round() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(n: u64, seed: u64) -> impl Iterator<Item = u64> {
        // SplitMix64: uniform, and the same every run.
        (0..n).map(move |i| {
            let mut z = seed.wrapping_add(i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        })
    }

    #[test]
    fn small_counts_are_exact_and_repeats_count_once() {
        let mut s = Sketch::default();
        assert_eq!(s.estimate(), 0);
        assert!(s.is_empty());
        for tag in tags(25, 1) {
            s.insert(tag);
            s.insert(tag);
        }
        assert_eq!(s.estimate(), 25);
    }

    #[test]
    fn large_counts_are_within_a_few_standard_errors() {
        for n in [1_000u64, 10_000, 100_000] {
            let mut s = Sketch::default();
            tags(n, n).for_each(|t| s.insert(t));
            let error = (s.estimate() as f64 - n as f64).abs() / n as f64;
            assert!(error < 0.05, "{n}: estimated {}", s.estimate());
        }
    }

    #[test]
    fn a_merge_counts_the_union_and_bytes_round_trip() {
        let (mut a, mut b) = (Sketch::default(), Sketch::default());
        tags(3_000, 7).for_each(|t| a.insert(t));
        // Half of b's tags are a's.
        tags(1_500, 7)
            .chain(tags(1_500, 99))
            .for_each(|t| b.insert(t));
        a.merge(&b);
        let error = (a.estimate() as f64 - 4_500.0).abs() / 4_500.0;
        assert!(error < 0.05, "estimated {}", a.estimate());
        assert_eq!(Sketch::from_bytes(a.as_bytes()), Some(a.clone()));
        assert_eq!(Sketch::from_bytes(&[0; 10]), None);
    }
}
