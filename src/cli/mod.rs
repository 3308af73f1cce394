//! The command line's bodies, one file per command family. `src/main.rs` holds only the clap
//! definitions and the dispatch.

pub mod bench;
pub mod demo;
pub mod detect;
pub mod models;
pub mod pose;
pub mod replay;
pub mod serve;
pub mod sim;
pub mod train;

use anyhow::{Context, Result};

/// Parses `HxW`.
pub fn parse_size(s: &str) -> Result<[usize; 2]> {
    let (h, w) = s.split_once(['x', 'X']).with_context(|| format!("size '{s}' is not HxW"))?;
    Ok([h.trim().parse().context("size height")?, w.trim().parse().context("size width")?])
}
