/// mimalloc instead of glibc's malloc: a request allocates and frees many
/// small buffers across worker threads, where glibc's arenas spent a quarter
/// of an mget's CPU (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    sluice::cli::main()
}
