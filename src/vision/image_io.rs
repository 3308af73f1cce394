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

/// Triangle-filter taps (bilinear, widened to average when shrinking, as image's
/// `FilterType::Triangle`): for each output index, the first source index and the weights.
fn taps(src: usize, dst: usize) -> Vec<(usize, Vec<f32>)> {
    let ratio = src as f32 / dst as f32;
    let support = ratio.max(1.0);
    (0..dst)
        .map(|o| {
            let center = (o as f32 + 0.5) * ratio;
            let left = ((center - support).floor().max(0.0) as usize).min(src - 1);
            let right = ((center + support).ceil() as usize).clamp(left + 1, src);
            let mut w: Vec<f32> = (left..right).map(|i| (1.0 - ((i as f32 + 0.5 - center) / support).abs()).max(0.0)).collect();
            let sum: f32 = w.iter().sum();
            if sum > 0.0 {
                w.iter_mut().for_each(|v| *v /= sum);
            } else {
                w = vec![1.0];
                return (((center as usize).min(src - 1)), w);
            }
            (left, w)
        })
        .collect()
}

/// Letterboxes `img` into an `in_w x in_h` model input without intermediate images: the
/// aspect is kept, the picture centred, and `put(y, x, rgb)` receives every pixel of the
/// resized area (0..255 values, bars left to the caller). Returns the placement.
pub fn letterbox_with(img: &RgbImage, in_w: usize, in_h: usize, mut put: impl FnMut(usize, usize, [f32; 3])) -> Letterbox {
    let lb = Letterbox::new(img.width(), img.height(), in_w, in_h);
    let rw = ((img.width() as f32 * lb.scale).round() as usize).clamp(1, in_w);
    let rh = ((img.height() as f32 * lb.scale).round() as usize).clamp(1, in_h);
    let (sw, sh) = (img.width() as usize, img.height() as usize);
    let (tx, ty) = (taps(sw, rw), taps(sh, rh));
    let src = img.as_raw();
    // vertical pass over the rows each output row needs, then horizontal
    let mut row = vec![0f32; sw * 3];
    let (px, py) = (lb.pad_x as usize, lb.pad_y as usize);
    for (oy, (y0, wy)) in ty.iter().enumerate() {
        row.iter_mut().for_each(|v| *v = 0.0);
        for (k, &w) in wy.iter().enumerate() {
            let line = &src[(y0 + k) * sw * 3..(y0 + k + 1) * sw * 3];
            for (acc, &v) in row.iter_mut().zip(line) {
                *acc += w * v as f32;
            }
        }
        for (ox, (x0, wx)) in tx.iter().enumerate() {
            let mut c = [0f32; 3];
            for (k, &w) in wx.iter().enumerate() {
                let p = &row[(x0 + k) * 3..(x0 + k) * 3 + 3];
                c[0] += w * p[0];
                c[1] += w * p[1];
                c[2] += w * p[2];
            }
            put(oy + py, ox + px, [c[0].round().clamp(0.0, 255.0), c[1].round().clamp(0.0, 255.0), c[2].round().clamp(0.0, 255.0)]);
        }
    }
    lb
}

/// Letterboxes an RGB image into `in_w x in_h` (aspect kept, centred, black bars) with
/// triangle (antialiased bilinear) resampling. Returns the HWC u8 pixels and the placement.
pub fn letterbox(img: &RgbImage, in_w: usize, in_h: usize) -> (Vec<u8>, Letterbox) {
    let mut out = vec![0u8; in_w * in_h * 3];
    let lb = letterbox_with(img, in_w, in_h, |y, x, c| {
        let d = (y * in_w + x) * 3;
        out[d] = c[0] as u8;
        out[d + 1] = c[1] as u8;
        out[d + 2] = c[2] as u8;
    });
    (out, lb)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letterbox_matches_image_triangle_resize() {
        // a smooth gradient with texture, shrunk like a camera frame into a model input
        let img = RgbImage::from_fn(640, 480, |x, y| {
            image::Rgb([(x * 255 / 639) as u8, (y * 255 / 479) as u8, (((x / 7) ^ (y / 5)) * 37 % 256) as u8])
        });
        let (ours, lb) = letterbox(&img, 256, 256);
        let (rw, rh) = (256u32, 192u32);
        assert_eq!((lb.pad_x, lb.pad_y), (0.0, 32.0));
        let want = image::imageops::resize(&img, rw, rh, image::imageops::FilterType::Triangle);
        let mut max = 0i32;
        let mut sum = 0i64;
        for y in 0..rh as usize {
            for x in 0..rw as usize {
                for c in 0..3 {
                    let d = (ours[((y + 32) * 256 + x) * 3 + c] as i32 - want.get_pixel(x as u32, y as u32)[c] as i32).abs();
                    max = max.max(d);
                    sum += d as i64;
                }
            }
        }
        let mean = sum as f64 / (rw * rh * 3) as f64;
        assert!(max <= 3 && mean < 0.5, "max {max}, mean {mean}");
        // the bars stay black
        assert!(ours[..32 * 256 * 3].iter().all(|&v| v == 0));
        // upscaling works too
        let small = RgbImage::from_pixel(10, 5, image::Rgb([200, 100, 50]));
        let (up, _) = letterbox(&small, 64, 64);
        assert_eq!(&up[(32 * 64 + 32) * 3..(32 * 64 + 32) * 3 + 3], &[200, 100, 50]);
    }
}
