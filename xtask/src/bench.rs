//! `cargo xtask bench` — written by the benchmark task.

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("the benchmark is being written")
}
