//! `walkout pose`: people and their keypoints in image files.

use super::parse_size;
use crate::models::Repository;
use crate::pipeline::{InputSize, PosePipeline};
use crate::runtime::Device;
use anyhow::Result;
use clap::Args;

#[derive(Args, Debug)]
pub struct PoseArgs {
    #[command(flatten)]
    pub io: super::ImageIo,
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
    super::each_image(&a.io, |img| {
        let persons = pipe.run(img)?;
        let lines = persons
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let [x0, y0, x1, y1] = p.bbox;
                let visible = p.keypoints.iter().filter(|k| k.score >= 0.3).count();
                format!("#{i} score {:.3} box [{x0:.0},{y0:.0} - {x1:.0},{y1:.0}] keypoints {visible}/17 visible", p.score)
            })
            .collect();
        Ok(super::Report {
            noun: "persons",
            items: serde_json::to_value(&persons)?,
            count: persons.len(),
            lines,
            draw: Box::new(move |c| crate::vision::draw::draw_persons(c, &persons, 0.2)),
        })
    })
}
