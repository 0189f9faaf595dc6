//! The imagizer service as its own process.

// mimalloc: the request path allocates many small short-lived buffers, which glibc's malloc
// serves markedly slower (it showed as the largest item in a CPU profile of history).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    common::server::Server::main(imagizer::BINARY, imagizer::build).await
}
