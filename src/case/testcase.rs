//! The test case itself, and the seeded inputs campaigns derive cases from.

use super::Plan;
use rand_core::{RngCore, SeedableRng};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestCase {
    /// The module without the plan section.
    pub wasm: Vec<u8>,
    pub plan: Plan,
}

impl TestCase {
    /// The earlier cases of the plan's history, oldest first.
    pub fn history(&self) -> anyhow::Result<Vec<TestCase>> {
        self.plan.history.iter().map(|hex| TestCase::from_module_bytes(&from_hex(hex)?)).collect()
    }

    /// The modules instantiated before the main one (`Plan::linked`).
    pub fn linked(&self) -> anyhow::Result<Vec<Vec<u8>>> {
        self.plan.linked.iter().map(|hex| from_hex(hex)).collect()
    }

    /// Every module of the case in instantiation order: the linked ones,
    /// then the main one.
    pub fn modules(&self) -> anyhow::Result<Vec<Vec<u8>>> {
        let mut modules = self.linked()?;
        modules.push(self.wasm.clone());
        Ok(modules)
    }

    /// Whether any module of the case (linked ones included) contains the
    /// trigger of a known bug's avoid rule.
    pub fn hits(&self, rule: &super::AvoidRule) -> bool {
        self.modules().unwrap_or_else(|_| vec![self.wasm.clone()]).iter().any(|wasm| rule.matches(wasm))
    }

    /// This case with one module replaced by `wasm`: linked module `k` for
    /// `Some(k)`, the main one for `None`.
    pub fn with_module(&self, slot: Option<usize>, wasm: &[u8]) -> TestCase {
        let mut case = self.clone();
        match slot {
            None => case.wasm = wasm.to_vec(),
            Some(k) => case.plan.linked[k] = to_hex(wasm),
        }
        case
    }

    /// This case with `modules` instantiated before its main module.
    pub fn with_linked(&self, modules: &[Vec<u8>]) -> TestCase {
        let mut case = self.clone();
        case.plan.linked = modules.iter().map(|m| to_hex(m)).collect();
        case
    }

    /// This case run after `earlier` (in the same engines).
    pub fn with_history(&self, earlier: &[TestCase]) -> TestCase {
        let mut case = self.clone();
        case.plan.history = earlier.iter().map(|c| to_hex(&c.to_module_bytes())).collect();
        case
    }
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn from_hex(hex: &str) -> anyhow::Result<Vec<u8>> {
    anyhow::ensure!(hex.len().is_multiple_of(2), "odd hex length");
    (0..hex.len()).step_by(2).map(|i| Ok(u8::from_str_radix(&hex[i..i + 2], 16)?)).collect()
}

/// Deterministic pseudo-random fuzz input number `index` of campaign `seed`.
pub fn seeded_input(seed: u64, index: u64) -> Vec<u8> {
    seeded(seed, index, 0, None)
}

/// The bytes a campaign draws its module `index`'s plan number `plan`
/// (from 1; plan 0 is drawn from the module's input) from.
pub fn plan_input(seed: u64, index: u64, plan: u64) -> Vec<u8> {
    seeded(seed, index, plan, Some(512))
}

fn seeded(seed: u64, index: u64, plan: u64, len: Option<usize>) -> Vec<u8> {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8..16].copy_from_slice(&index.to_le_bytes());
    key[16..24].copy_from_slice(&plan.to_le_bytes());
    let mut rng = rand_chacha::ChaCha8Rng::from_seed(key);
    let len = len.unwrap_or_else(|| 2048 + (rng.next_u32() as usize % (14 * 1024)));
    let mut data = vec![0u8; len];
    rng.fill_bytes(&mut data);
    data
}
