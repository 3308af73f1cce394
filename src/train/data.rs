//! Person crops with identities (`CropSet`), what to collect (`CropPlan`), and the training's
//! deterministic generator. The crops come from the synthetic store (`cli::train` renders
//! them: every camera's view of every shopper it sees well enough, cropped around the visible
//! box the way the live pipeline crops a detection, with the box jittered as a detector's
//! would be); this module does not know the simulator.

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
