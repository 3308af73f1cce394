//! `walkout detect`: objects (COCO classes) in image files, with a detector from the
//! repository (CenterNet by default).

use crate::models::heads::HeadOutput;
use crate::models::{Repository, Task};
use crate::pipeline::PosePipeline;
use crate::runtime::Device;
use anyhow::Result;
use clap::Args;

#[derive(Args, Debug)]
pub struct DetectArgs {
    #[command(flatten)]
    pub io: super::ImageIo,
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
    super::each_image(&a.io, |img| {
        let HeadOutput::Detections(found) = pipe.run_output(img, pipe.size)? else {
            anyhow::bail!("model '{}' does not decode to detections", a.model)
        };
        let lines = found
            .iter()
            .map(|d| {
                let [x0, y0, x1, y1] = d.bbox;
                format!("{:<14} score {:.3} box [{x0:.0},{y0:.0} - {x1:.0},{y1:.0}]", d.label, d.score)
            })
            .collect();
        Ok(super::Report {
            noun: "detections",
            items: serde_json::to_value(&found)?,
            count: found.len(),
            lines,
            draw: Box::new(move |c| crate::vision::draw::draw_detections(c, &found)),
        })
    })
}
