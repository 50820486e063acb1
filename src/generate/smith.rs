//! Module generation: wasm-smith configured swarm-style for GC-heavy modules.
//!
//! Every input picks its own knobs (feature mix, instruction kinds, sizes), so
//! a campaign spreads over many shapes of module instead of averaging them.
//! Two profiles: `Profile::Gc` (the point of the tool) and
//! `Profile::RefTypes`, modules inside wasmi's feature set (reference types,
//! tables, tail calls; no GC) so the wasmi oracle really takes part.

use super::MODULE_FUEL;
use crate::case::{Profile, host};
use crate::line::{self, Cap};
use arbitrary::{Result, Unstructured};
use wasm_smith::{InstructionKind, InstructionKinds};

/// A wasm-smith configuration for `profile`, with knobs drawn from `u`.
pub fn smith_config(profile: Profile, u: &mut Unstructured) -> Result<wasm_smith::Config> {
    let mut c = wasm_smith::Config {
        // Proposals the engines under test do not run, or that we do not
        // fuzz (relaxed SIMD may differ between correct engines).
        relaxed_simd_enabled: false,
        threads_enabled: false,
        shared_everything_threads_enabled: false,
        memory64_enabled: false,
        custom_page_sizes_enabled: false,
        wide_arithmetic_enabled: false,
        compact_imports_enabled: false,
        custom_descriptors_enabled: false,
        multibyte_array_access_enabled: false,
        // Always on.
        reference_types_enabled: true,
        multi_value_enabled: true,
        bulk_memory_enabled: true,
        saturating_float_to_int_enabled: true,
        sign_extension_ops_enabled: true,
        extended_const_enabled: true,
        export_everything: true,
        canonicalize_nans: true,
        available_imports: Some(wat::parse_str(host::imports_wat(profile)).expect("import module parses")),
        max_imports: 8,
        // Few types: wasm-smith otherwise spends most of the input on types, and
        // Wasmtime compiles a trampoline per function type. The host imports'
        // signatures count against the limit too.
        min_types: 1,
        max_types: u.int_in_range(8..=20)?,
        // Imported functions count against `max_funcs`: leave room for at
        // least three defined ones after all five host imports.
        min_funcs: 3,
        max_funcs: HOST_FUNCS + u.int_in_range(3..=12)?,
        max_instructions: u.int_in_range(20..=400)?,
        max_nesting_depth: u.int_in_range(2..=10)?,
        max_globals: u.int_in_range(0..=8)?,
        max_memories: u.int_in_range(0..=2)?,
        max_memory32_bytes: 1 << 20,
        max_data_segments: u.int_in_range(0..=4)?,
        max_element_segments: u.int_in_range(0..=4)?,
        max_elements: 16,
        max_table_elements: 1000,
        // Constant expressions over the whole size range: in a quarter of
        // the modules an array length in a global, element or table
        // initializer is any constant expression (up to past every
        // engine's limit: instantiation-time allocation and its failure),
        // elsewhere at most the expression fuel, 50 to 400 elements.
        limit_arrays_in_const_exprs: u.ratio(3, 4)? || !crate::line::has(crate::line::Cap::HugeConstArrays),
        const_expr_fuel: u.int_in_range(50..=400)?,
        // `export_everything` counts exports against this budget.
        max_type_size: 10_000,
        allow_floats: u.ratio(1, 3)?,
        // Rarely: the trapping GC instructions are the interesting ones.
        disallow_traps: u.ratio(1, 10)?,
        ..wasm_smith::Config::default()
    };
    match profile {
        Profile::Gc => {
            c.gc_enabled = true;
            // `v128` fields, locals and globals (and, in half of these
            // modules, SIMD code around GC code) in a quarter of the GC
            // modules: decided by a value already drawn, so an input whose
            // module has no SIMD makes the module it made before SIMD was
            // fuzzed.
            c.simd_enabled = c.max_instructions % 4 == 1;
            c.exceptions_enabled = u.ratio(1, 2)? && line::has(Cap::Exceptions);
            c.max_tags = if c.exceptions_enabled { u.int_in_range(1..=4)? } else { 0 };
            c.tail_call_enabled = u.ratio(1, 2)?;
            c.max_tables = u.int_in_range(0..=3)?;
        }
        Profile::RefTypes => {
            c.gc_enabled = false;
            c.simd_enabled = false;
            c.exceptions_enabled = false;
            c.tail_call_enabled = u.ratio(1, 2)?;
            c.min_tables = 1;
            c.max_tables = u.int_in_range(1..=4)?;
        }
    }
    // SIMD code in half the modules with SIMD types (by another value
    // already drawn): its instructions would otherwise crowd out the GC
    // ones (a third of the modules with both lost rare reach-matrix cells).
    let simd_code = c.simd_enabled && c.max_nesting_depth.is_multiple_of(2);
    c.allowed_instructions = instruction_kinds(profile, c.allow_floats, simd_code, u)?;
    Ok(c)
}

/// Swarm choice of instruction kinds, biased to aggregate, reference and
/// control instructions: those are always on, the rest only sometimes, so
/// their share of generated code goes up.
fn instruction_kinds(profile: Profile, floats: bool, simd: bool, u: &mut Unstructured) -> Result<InstructionKinds> {
    use InstructionKind::*;
    let mut kinds = vec![Reference, Control, Variable, Parametric, NumericInt];
    if profile == Profile::Gc {
        kinds.push(Aggregate);
    }
    if floats && u.ratio(1, 2)? {
        kinds.push(Numeric);
    }
    let table_odds = if profile == Profile::RefTypes { 4 } else { 2 };
    if u.ratio(table_odds - 1, table_odds)? {
        kinds.push(Table);
    }
    if u.ratio(2, 5)? {
        kinds.push(if floats { Memory } else { MemoryInt });
    }
    if simd {
        kinds.push(if floats { Vector } else { VectorInt });
    }
    Ok(InstructionKinds::new(&kinds))
}

/// Picks a profile: mostly GC, a sixth inside wasmi's subset.
pub fn choose_profile(u: &mut Unstructured) -> Result<Profile> {
    Ok(if u.ratio(1, 6)? { Profile::RefTypes } else { Profile::Gc })
}

/// wasm-smith from an arbitrary configuration, with GC and reference types
/// forced on and the same host imports. Threads stay off: Pulley rejects
/// atomics that native code accepts, which is a difference of configuration,
/// not a bug.
pub fn plain_module(u: &mut Unstructured) -> Result<Vec<u8>> {
    let mut config: wasm_smith::Config = u.arbitrary()?;
    config.gc_enabled = true;
    config.reference_types_enabled = true;
    config.threads_enabled = false;
    config.shared_everything_threads_enabled = false;
    config.relaxed_simd_enabled = false;
    config.exceptions_enabled &= line::has(Cap::Exceptions);
    config.available_imports = Some(wat::parse_str(host::imports_wat(Profile::Gc)).expect("import module parses"));
    config.export_everything = true;
    config.canonicalize_nans = true;
    build(config, u)
}

/// Generates one module of `profile`, with termination ensured.
pub fn module(profile: Profile, u: &mut Unstructured) -> Result<Vec<u8>> {
    build(smith_config(profile, u)?, u)
}

/// Generates a module of a linked case, importing from `available` (an
/// available-imports module and the number of functions it offers, host
/// ones included: `generate::linked`) where given, from the host functions
/// alone otherwise. A `provider` (a module the case's later modules import
/// from) gets few types and defined functions: every type and function
/// costs each configuration compilation (a trampoline per type), and the
/// later modules copy all its types.
pub fn linked_module(
    profile: Profile,
    u: &mut Unstructured,
    available: Option<(Vec<u8>, usize)>,
    provider: bool,
) -> Result<Vec<u8>> {
    let mut config = smith_config(profile, u)?;
    let mut offered = HOST_FUNCS;
    if let Some((available, offered_funcs)) = available {
        offered = offered_funcs;
        config.available_imports = Some(available);
        // Imported functions count against `max_funcs`: room for six more,
        // so a module that imports many defines fewer, but still its three
        // (wasm-smith fails a module whose imports leave no room for them).
        config.max_funcs += offered_funcs.saturating_sub(HOST_FUNCS).min(6);
        config.max_imports += offered_funcs;
        config.max_type_size *= 2;
    }
    if provider {
        config.max_types = config.max_types.min(HOST_FUNCS + 5);
        config.max_funcs = config.max_funcs.min(offered + 4);
    }
    build(config, u)
}

/// The host functions a first module may import (`max_funcs` leaves room
/// for them).
const HOST_FUNCS: usize = 5;

fn build(config: wasm_smith::Config, u: &mut Unstructured) -> Result<Vec<u8>> {
    let mut module = wasm_smith::Module::new(config, u)?;
    module.ensure_termination(MODULE_FUEL).map_err(|_| arbitrary::Error::IncorrectFormat)?;
    Ok(module.to_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::case::{allocates, seeded_input};

    #[test]
    fn generated_modules_validate_under_their_profile() {
        let mut gc_allocs = 0;
        for i in 0..60 {
            let data = seeded_input(7, i);
            let mut u = Unstructured::new(&data);
            let profile = if i % 4 == 0 { Profile::RefTypes } else { Profile::Gc };
            let wasm = module(profile, &mut u).unwrap();
            wasmparser::Validator::new_with_features(profile.features())
                .validate_all(&wasm)
                .unwrap_or_else(|e| panic!("case {i} ({profile:?}) invalid: {e}"));
            if allocates(&wasm) {
                gc_allocs += 1;
            }
        }
        // The generator is meant to be GC-heavy; plain wasm-smith allocates in ~10%.
        assert!(gc_allocs >= 15, "only {gc_allocs}/60 modules allocate");
    }
}
