//! A `gcfuzz worker` that also knows the planted configurations: tests run
//! it as the worker process to check crash isolation end to end.

#[path = "planted.rs"]
mod planted;

fn main() {
    if let Err(e) = gcfuzz::worker::serve(planted::factory) {
        eprintln!("planted worker: {e:#}");
        std::process::exit(2);
    }
}
