//! Person crops with identities from the synthetic store: every camera's view of every
//! shopper it sees well enough (visible share and height over thresholds), cropped around the
//! visible box the way the live pipeline crops a detection (`vision::crop`), with the box
//! jittered as a detector's would be.

use crate::sim::{SimConfig, Simulator};
use crate::vision::crop::crop_with;
use image::RgbImage;

/// Crops of one or more simulated stores.
#[derive(Clone, Debug, Default)]
pub struct CropSet {
    pub height: usize,
    pub width: usize,
    /// `len * height * width * 3` RGB bytes, HWC per crop.
    pub pixels: Vec<u8>,
    /// Identity per crop (dense, 0..identities).
    pub labels: Vec<u32>,
    /// Camera per crop (store-unique: seed and camera).
    pub cameras: Vec<u32>,
    pub identities: usize,
}

impl CropSet {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Crop `i`'s pixels.
    pub fn crop(&self, i: usize) -> &[u8] {
        let n = self.height * self.width * 3;
        &self.pixels[i * n..(i + 1) * n]
    }
}

/// What crops to collect.
#[derive(Clone, Debug)]
pub struct CropPlan {
    pub seeds: Vec<u64>,
    pub shoppers: usize,
    pub cameras: usize,
    pub seconds: f64,
    /// Frames sampled per second of store time.
    pub fps: f64,
    pub min_visibility: f32,
    pub min_height: f32,
    /// Box jitter, as a share of the box's size.
    pub jitter: f32,
}

/// A tiny deterministic generator (splitmix64) for jitter and shuffles.
#[derive(Clone, Debug)]
pub struct Prng(pub u64);

impl Prng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [-1, 1).
    pub fn signed(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

/// Renders each seed's store and collects its crops at `height x width`.
pub fn collect(plan: &CropPlan, height: usize, width: usize) -> Result<CropSet, String> {
    let mut set = CropSet { height, width, ..Default::default() };
    let mut rng = Prng(0x5EED ^ plan.seeds.first().copied().unwrap_or(0));
    for (si, &seed) in plan.seeds.iter().enumerate() {
        let config =
            SimConfig { seed, shoppers: plan.shoppers, cameras: plan.cameras, seconds: plan.seconds, fps: plan.fps, ..Default::default() };
        let mut sim = Simulator::new(config).map_err(|e| e.to_string())?;
        let base = set.identities as u32;
        let steps = (plan.seconds * plan.fps).round() as u64;
        let mut most = 0u32;
        for _ in 0..steps {
            sim.step();
            let rows = sim.truth();
            for r in rows {
                let b = r.bbox;
                if r.visibility() < plan.min_visibility || b[3] - b[1] < plan.min_height {
                    continue;
                }
                let Some(cam) = sim.cams.iter().find(|c| c.cam.id == r.cam) else { continue };
                let f = &cam.frame;
                let Some(img) = RgbImage::from_raw(f.width as u32, f.height as u32, f.rgb.clone()) else { continue };
                let (w, h) = (b[2] - b[0], b[3] - b[1]);
                let j = plan.jitter;
                let jb =
                    [b[0] + rng.signed() * j * w, b[1] + rng.signed() * j * h, b[2] + rng.signed() * j * w, b[3] + rng.signed() * j * h];
                let start = set.pixels.len();
                set.pixels.resize(start + height * width * 3, 0);
                let out = &mut set.pixels[start..];
                crop_with(&img, jb, width, height, |y, x, rgb| {
                    for c in 0..3 {
                        out[(y * width + x) * 3 + c] = rgb[c].round().clamp(0.0, 255.0) as u8;
                    }
                });
                set.labels.push(base + r.id);
                set.cameras.push((si * 1000 + r.cam) as u32);
                most = most.max(r.id + 1);
            }
        }
        set.identities = (base + most) as usize;
    }
    // identities never seen leave gaps: make labels dense
    let mut seen: Vec<u32> = set.labels.clone();
    seen.sort_unstable();
    seen.dedup();
    for l in &mut set.labels {
        *l = seen.binary_search(l).unwrap_or(0) as u32;
    }
    set.identities = seen.len();
    Ok(set)
}
