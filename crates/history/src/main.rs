//! The history service as its own process.

use common::config::Env;
use common::telemetry::{self, LogConfig};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let env = Env::from_process();
    telemetry::init(&LogConfig::from_env(&env)?);
    history::build(&env).await?.run_until_signal().await?;
    Ok(())
}
