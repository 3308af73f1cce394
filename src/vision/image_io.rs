//! Image loading with clear errors and size limits checked before decoding.

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
/// (decompression bombs are refused cheaply). A decoder that panics on hostile bytes is
/// contained: its panic becomes a `Decode` error (the fuzz pass found one in zune-jpeg
/// 0.5.15's IDCT, the latest 0.5; `tests/fuzz/corpus/image/zune-jpeg-idct-panic.jpg`).
pub fn decode_limited(bytes: &[u8], name: &str, max_side: u32) -> Result<RgbImage, ImageError> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| decode_unguarded(bytes, name, max_side))) {
        Ok(r) => r,
        Err(_) => {
            Err(ImageError::Decode { path: name.into(), msg: "the decoder failed on this input (a panic inside it, contained)".into() })
        }
    }
}

fn decode_unguarded(bytes: &[u8], name: &str, max_side: u32) -> Result<RgbImage, ImageError> {
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
