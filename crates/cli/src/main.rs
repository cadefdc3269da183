//! The `trailwatch` binary: argv in, exit code out. Everything else lives in the library
//! so tests can drive it.

/// mimalloc instead of the system allocator: a scan allocates and frees small strings for
/// every matched event on worker threads and frees many of them on the gate thread; glibc's
/// malloc spent about a fifth of the CPU time there (see `scripts/bench-scan`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    trailwatch::cli::main()
}
