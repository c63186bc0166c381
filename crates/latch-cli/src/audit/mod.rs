//! stub
/// stub
#[derive(Debug, clap::Args)]
pub struct Args {
    /// json
    #[arg(long)]
    pub json: bool,
}
/// stub
pub fn run(_a: &Args) -> anyhow::Result<crate::exit::Status> {
    Ok(crate::exit::Status::Success)
}
