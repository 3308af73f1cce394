//! `walkout hands`: hands in image files, MediaPipe's way: the palm detector, then the hand
//! landmark model on each palm's upright crop (`pipeline::HandsPipeline`).

use crate::models::Repository;
use crate::pipeline::HandsPipeline;
use crate::runtime::Device;
use anyhow::Result;
use clap::Args;

#[derive(Args, Debug)]
pub struct HandsArgs {
    #[command(flatten)]
    pub io: super::ImageIo,
    /// The palm detector.
    #[arg(long, default_value = "handdetect")]
    pub palm_model: String,
    /// The landmark model (handlandmark-full or handlandmark-lite).
    #[arg(long, default_value = "handlandmark-full")]
    pub landmark_model: String,
    #[arg(long, default_value = "cpu")]
    pub device: Device,
    /// Most hands per image.
    #[arg(long, default_value_t = 8)]
    pub max_hands: usize,
    /// Minimum palm score (default: the palm model config's).
    #[arg(long)]
    pub min_palm_score: Option<f32>,
    /// Minimum hand presence (default: the landmark model config's).
    #[arg(long)]
    pub min_presence: Option<f32>,
}

pub fn run(repo: &Repository, a: HandsArgs) -> Result<()> {
    let mut pipe = HandsPipeline::new(repo, &a.palm_model, &a.landmark_model, a.device)?;
    pipe.max_hands = a.max_hands;
    if let Some(s) = a.min_palm_score {
        pipe.palms.min_score = s;
    }
    if let Some(s) = a.min_presence {
        pipe.landmarks.min_score = s;
    }
    super::each_image(&a.io, |img| {
        let hands = pipe.run(img)?;
        let lines = hands
            .iter()
            .map(|f| {
                let [x0, y0, x1, y1] = f.palm.bbox;
                let w = f.hand.points[0];
                format!(
                    "{:?} hand, presence {:.3} (handedness {:.2}), palm {:.3} [{x0:.0},{y0:.0} - {x1:.0},{y1:.0}], wrist ({:.0}, {:.0})",
                    f.hand.handedness, f.hand.presence, f.hand.handedness_score, f.palm.score, w.x, w.y
                )
            })
            .collect();
        let drawn: Vec<_> = hands.iter().map(|f| (f.rect, f.hand.clone())).collect();
        Ok(super::Report {
            noun: "hands",
            items: serde_json::to_value(&hands)?,
            count: hands.len(),
            lines,
            draw: Box::new(move |c| crate::vision::draw::draw_hands(c, &drawn)),
        })
    })
}
