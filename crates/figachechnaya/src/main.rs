//! `cargo run --release`: the whole site on <http://127.0.0.1:8080>.

use common::config::Env;
use common::telemetry::{self, LogConfig};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let env = Env::from_process();
    telemetry::init(&LogConfig::from_env(&env)?);
    figachechnaya::build(&env).await?.run_until_signal().await?;
    Ok(())
}
