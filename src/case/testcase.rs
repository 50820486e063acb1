//! The test case itself, and the seeded inputs campaigns derive cases from.

use super::Plan;
use rand_core::{RngCore, SeedableRng};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestCase {
    /// The module without the plan section.
    pub wasm: Vec<u8>,
    pub plan: Plan,
}

/// Deterministic pseudo-random fuzz input number `index` of campaign `seed`.
pub fn seeded_input(seed: u64, index: u64) -> Vec<u8> {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8..16].copy_from_slice(&index.to_le_bytes());
    let mut rng = rand_chacha::ChaCha8Rng::from_seed(key);
    let len = 2048 + (rng.next_u32() as usize % (14 * 1024));
    let mut data = vec![0u8; len];
    rng.fill_bytes(&mut data);
    data
}
