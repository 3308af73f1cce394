//! `walkout detect`: objects (COCO classes) in image files, with a detector from the
//! repository (CenterNet by default).

use crate::models::heads::HeadOutput;
use crate::models::{Repository, Task};
use crate::pipeline::PosePipeline;
use crate::runtime::Device;
use anyhow::{Context, Result};
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct DetectArgs {
    /// Image files (JPEG, PNG).
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Write the image with labelled boxes (a directory when several images are given).
    #[arg(long)]
    pub draw: Option<PathBuf>,
    #[arg(long, default_value = "centernet")]
    pub model: String,
    #[arg(long, default_value = "cpu")]
    pub device: Device,
    /// Minimum score (default: the model config's).
    #[arg(long)]
    pub min_score: Option<f32>,
}

pub fn run(repo: &Repository, a: DetectArgs) -> Result<()> {
    let mut pipe = PosePipeline::for_task(repo, &a.model, a.device, None, Task::Detect)?;
    if let Some(s) = a.min_score {
        pipe.min_score = s;
    }
    let many = a.images.len() > 1;
    if let (Some(dir), true) = (&a.draw, many) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut all = Vec::new();
    for path in &a.images {
        let img = crate::vision::image_io::load(path)?;
        let HeadOutput::Detections(found) = pipe.run_output(&img, pipe.size)? else {
            anyhow::bail!("model '{}' does not decode to detections", a.model)
        };
        if let Some(d) = &a.draw {
            let out = if many { d.join(format!("{}.png", path.file_stem().unwrap_or_default().to_string_lossy())) } else { d.clone() };
            let mut canvas = img.clone();
            crate::vision::draw::draw_detections(&mut canvas, &found);
            canvas.save(&out).with_context(|| format!("writing {}", out.display()))?;
            eprintln!("wrote {}", out.display());
        }
        if a.json {
            all.push(
                serde_json::json!({"image": path.display().to_string(), "width": img.width(), "height": img.height(), "detections": found}),
            );
        } else {
            println!("{} ({}x{}): {} object(s)", path.display(), img.width(), img.height(), found.len());
            for d in &found {
                let [x0, y0, x1, y1] = d.bbox;
                println!("  {:<14} score {:.3} box [{x0:.0},{y0:.0} - {x1:.0},{y1:.0}]", d.label, d.score);
            }
        }
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&all)?);
    }
    Ok(())
}
