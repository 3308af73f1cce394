//! The command line's bodies, one file per command family. `src/main.rs` holds only the clap
//! definitions and the dispatch.

pub mod bench;
pub mod demo;
pub mod detect;
pub mod hands;
pub mod kernels;
pub mod models;
pub mod pose;
pub mod replay;
pub mod serve;
pub mod sim;
pub mod train;

use anyhow::{Context, Result};
use image::RgbImage;
use std::path::PathBuf;

/// Parses `HxW`.
pub fn parse_size(s: &str) -> Result<[usize; 2]> {
    let (h, w) = s.split_once(['x', 'X']).with_context(|| format!("size '{s}' is not HxW"))?;
    Ok([h.trim().parse().context("size height")?, w.trim().parse().context("size width")?])
}

/// The images an image command (`pose`, `detect`, `hands`) reads, and where what it found
/// goes.
#[derive(clap::Args, Debug)]
pub struct ImageIo {
    /// Image files (JPEG, PNG).
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Write the image with what was found drawn on it (a directory when several images are
    /// given).
    #[arg(long)]
    pub draw: Option<PathBuf>,
}

/// What an image command found in one image.
#[allow(missing_debug_implementations)]
pub struct Report {
    /// The JSON field and the plural noun for what was found ("persons").
    pub noun: &'static str,
    pub items: serde_json::Value,
    pub count: usize,
    /// One text line per item.
    pub lines: Vec<String>,
    /// Draws the items for `--draw`.
    pub draw: Box<dyn FnOnce(&mut RgbImage)>,
}

/// Runs `find` on each image, draws into `--draw` (a file, or a folder when there are several
/// images) and prints text or, with `--json`, one JSON array at the end.
pub fn each_image(io: &ImageIo, mut find: impl FnMut(&RgbImage) -> Result<Report>) -> Result<()> {
    let (images, draw, json) = (&io.images, io.draw.as_deref(), io.json);
    let many = images.len() > 1;
    if let (Some(dir), true) = (draw, many) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut all = Vec::new();
    for path in images {
        let img = crate::vision::image_io::load(path)?;
        let r = find(&img)?;
        if let Some(d) = draw {
            let out =
                if many { d.join(format!("{}.png", path.file_stem().unwrap_or_default().to_string_lossy())) } else { d.to_path_buf() };
            let mut canvas = img.clone();
            (r.draw)(&mut canvas);
            canvas.save(&out).with_context(|| format!("writing {}", out.display()))?;
            eprintln!("wrote {}", out.display());
        }
        if json {
            let mut o = serde_json::json!({"image": path.display().to_string(), "width": img.width(), "height": img.height()});
            o[r.noun] = r.items;
            all.push(o);
        } else {
            println!("{} ({}x{}): {} {}", path.display(), img.width(), img.height(), r.count, r.noun);
            for l in &r.lines {
                println!("  {l}");
            }
        }
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&all)?);
    }
    Ok(())
}
