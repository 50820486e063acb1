//! A `gcfuzz worker` that also knows the planted configurations: tests run
//! it as the worker process to check crash isolation end to end.

#[path = "planted.rs"]
mod planted;

fn main() {
    // Same flag as `gcfuzz worker`.
    let args: Vec<String> = std::env::args().collect();
    let limit = args.iter().position(|a| a == "--memory-limit-mb").and_then(|i| args.get(i + 1)?.parse().ok());
    if args.iter().any(|a| a == "--plant-copying") {
        planted::PLANT_COPYING.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    if args.iter().any(|a| a == "--plant-drc-eager-table") {
        planted::PLANT_DRC_EAGER_TABLE.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    if args.iter().any(|a| a == "--plant-drc-panic-once") {
        planted::PLANT_DRC_PANIC_ONCE.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    if let Some(path) = args.iter().position(|a| a == "--panic-once-marker").and_then(|i| args.get(i + 1)) {
        planted::PANIC_ONCE_MARKER.set(path.into()).unwrap();
    }
    if let Err(e) = gcfuzz::engine::worker::serve(planted::factory, limit) {
        eprintln!("planted worker: {e:#}");
        std::process::exit(2);
    }
}
