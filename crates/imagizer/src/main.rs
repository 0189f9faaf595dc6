//! The imagizer service as its own process.

use common::config::Env;
use common::telemetry::{self, LogConfig};

// mimalloc: the request path allocates many small short-lived buffers, which glibc's malloc
// serves markedly slower (it showed as the largest item in a CPU profile of history).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let env = Env::from_process();
    telemetry::init(&LogConfig::from_env(&env)?);
    imagizer::build(&env).await?.run_until_signal().await?;
    Ok(())
}
