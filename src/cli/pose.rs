//! `walkout pose`: people and their keypoints in image files.

use super::parse_size;
use crate::models::Repository;
use crate::pipeline::{InputSize, PosePipeline};
use crate::runtime::Device;
use anyhow::{Context, Result};
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct PoseArgs {
    /// Image files (JPEG, PNG).
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Write the image with skeletons and boxes (a directory when several images are given).
    #[arg(long)]
    pub draw: Option<PathBuf>,
    #[arg(long, default_value = "movenet-multipose")]
    pub model: String,
    #[arg(long, default_value = "cpu")]
    pub device: Device,
    /// Minimum person score (default: the model config's).
    #[arg(long)]
    pub min_score: Option<f32>,
    /// Model input size: HxW (multiples of 32), or `auto` (each image at up to 768 px on
    /// its longer side, for wide views with small people). Default: the config's size.
    #[arg(long)]
    pub size: Option<String>,
}

fn parse_input_size(s: &str) -> Result<InputSize> {
    if s == "auto" {
        Ok(InputSize::Auto { max_side: 768 })
    } else {
        Ok(InputSize::Fixed(parse_size(s)?))
    }
}

pub fn run(repo: &Repository, a: PoseArgs) -> Result<()> {
    let size = a.size.as_deref().map(parse_input_size).transpose()?;
    let mut pipe = PosePipeline::new(repo, &a.model, a.device, size)?;
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
        let persons = pipe.run(&img)?;
        if let Some(d) = &a.draw {
            let out = if many { d.join(format!("{}.png", path.file_stem().unwrap_or_default().to_string_lossy())) } else { d.clone() };
            let mut canvas = img.clone();
            crate::vision::draw::draw_persons(&mut canvas, &persons, 0.2);
            canvas.save(&out).with_context(|| format!("writing {}", out.display()))?;
            eprintln!("wrote {}", out.display());
        }
        if a.json {
            all.push(
                serde_json::json!({"image": path.display().to_string(), "width": img.width(), "height": img.height(), "persons": persons}),
            );
        } else {
            println!("{} ({}x{}): {} person(s)", path.display(), img.width(), img.height(), persons.len());
            for (i, p) in persons.iter().enumerate() {
                let [x0, y0, x1, y1] = p.bbox;
                let visible = p.keypoints.iter().filter(|k| k.score >= 0.3).count();
                println!("  #{i} score {:.3} box [{x0:.0},{y0:.0} - {x1:.0},{y1:.0}] keypoints {visible}/17 visible", p.score);
            }
        }
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&all)?);
    }
    Ok(())
}
