//! Image loading with clear errors, size limits checked before decoding, and letterboxing.

use image::RgbImage;
use std::path::Path;

/// Largest accepted image side, checked from the header before any pixel is decoded.
pub const MAX_SIDE: u32 = 16384;

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{path}: {msg}")]
    Io { path: String, msg: String },
    #[error("{path}: not a decodable image: {msg}")]
    Decode { path: String, msg: String },
    #[error("{path}: image is {w}x{h}; each side must be between 1 and {max} pixels")]
    Size { path: String, w: u32, h: u32, max: u32 },
}

/// Decodes an encoded image (JPEG, PNG) from memory into RGB8.
pub fn decode(bytes: &[u8], name: &str) -> Result<RgbImage, ImageError> {
    decode_limited(bytes, name, MAX_SIDE)
}

/// Decodes with a side limit checked from the header, before any pixel is decoded
/// (decompression bombs are refused cheaply).
pub fn decode_limited(bytes: &[u8], name: &str, max_side: u32) -> Result<RgbImage, ImageError> {
    let max_side = max_side.min(MAX_SIDE);
    let reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| ImageError::Decode { path: name.into(), msg: e.to_string() })?;
    if reader.format().is_none() {
        return Err(ImageError::Decode { path: name.into(), msg: "unknown image format".into() });
    }
    let (w, h) = reader.into_dimensions().map_err(|e| ImageError::Decode { path: name.into(), msg: e.to_string() })?;
    if w == 0 || h == 0 || w > max_side || h > max_side {
        return Err(ImageError::Size { path: name.into(), w, h, max: max_side });
    }
    let mut reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| ImageError::Decode { path: name.into(), msg: e.to_string() })?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(max_side);
    limits.max_image_height = Some(max_side);
    reader.limits(limits);
    let img = reader.decode().map_err(|e| ImageError::Decode { path: name.into(), msg: e.to_string() })?;
    Ok(img.to_rgb8())
}

pub fn load(path: &Path) -> Result<RgbImage, ImageError> {
    let p = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| ImageError::Io { path: p.clone(), msg: e.to_string() })?;
    decode(&bytes, &p)
}

/// How an image was placed into the model input.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Letterbox {
    pub scale: f32,
    pub pad_x: f32,
    pub pad_y: f32,
    pub in_w: usize,
    pub in_h: usize,
}

impl Letterbox {
    pub fn new(src_w: u32, src_h: u32, in_w: usize, in_h: usize) -> Self {
        let scale = (in_w as f32 / src_w as f32).min(in_h as f32 / src_h as f32);
        let rw = (src_w as f32 * scale).round();
        let rh = (src_h as f32 * scale).round();
        Letterbox { scale, pad_x: ((in_w as f32 - rw) / 2.0).floor(), pad_y: ((in_h as f32 - rh) / 2.0).floor(), in_w, in_h }
    }
    /// Maps normalised model coordinates (0..1 of the input tensor) to source pixels.
    pub fn to_source(&self, nx: f32, ny: f32) -> (f32, f32) {
        ((nx * self.in_w as f32 - self.pad_x) / self.scale, (ny * self.in_h as f32 - self.pad_y) / self.scale)
    }
}

/// Letterboxes an RGB image into `in_w x in_h` (aspect kept, centred, black bars) with
/// bilinear resampling. Returns the HWC u8 pixels and the placement.
pub fn letterbox(img: &RgbImage, in_w: usize, in_h: usize) -> (Vec<u8>, Letterbox) {
    let lb = Letterbox::new(img.width(), img.height(), in_w, in_h);
    let rw = ((img.width() as f32 * lb.scale).round() as u32).clamp(1, in_w as u32);
    let rh = ((img.height() as f32 * lb.scale).round() as u32).clamp(1, in_h as u32);
    let resized = image::imageops::resize(img, rw, rh, image::imageops::FilterType::Triangle);
    let mut out = vec![0u8; in_w * in_h * 3];
    let (px, py) = (lb.pad_x as usize, lb.pad_y as usize);
    for y in 0..rh as usize {
        let src = &resized.as_raw()[y * rw as usize * 3..(y + 1) * rw as usize * 3];
        let d = ((y + py) * in_w + px) * 3;
        out[d..d + src.len()].copy_from_slice(src);
    }
    (out, lb)
}
