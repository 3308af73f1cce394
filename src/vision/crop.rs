//! Person crops for re-identification: a box of a frame, widened or heightened about its
//! centre to the model's aspect (so a body is never squashed), resampled to the model's input
//! size. Each output pixel averages 2x2 bilinear samples spread over its footprint, which
//! keeps the shrink from aliasing stripes and checks. `shaders/preprocess.wgsl`'s crop kernel
//! computes the same, on the frame already on the GPU.

use crate::graph::{DType, Layout, Tensor};
use crate::models::heads::HandRect;
use crate::runtime::FrameSpec;
use image::RgbImage;

/// A crop request: which frame of the batch, and the box [x0, y0, x1, y1] in its pixels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Crop {
    pub frame: usize,
    pub bbox: [f32; 4],
}

/// The box, grown about its centre to the aspect `out_h / out_w`: [x0, y0, width, height].
pub fn crop_rect(bbox: [f32; 4], out_w: usize, out_h: usize) -> [f32; 4] {
    let (cx, cy) = ((bbox[0] + bbox[2]) / 2.0, (bbox[1] + bbox[3]) / 2.0);
    let (mut w, mut h) = ((bbox[2] - bbox[0]).max(1.0), (bbox[3] - bbox[1]).max(1.0));
    let aspect = out_h as f32 / out_w as f32;
    if h / w > aspect {
        w = h / aspect;
    } else {
        h = w * aspect;
    }
    [cx - w / 2.0, cy - h / 2.0, w, h]
}

/// Bilinear sample of channel `c` at (x, y) pixel centres, edges clamped.
#[inline]
fn bilinear(src: &[u8], sw: usize, sh: usize, x: f32, y: f32, c: usize) -> f32 {
    let x = (x - 0.5).clamp(0.0, (sw - 1) as f32);
    let y = (y - 0.5).clamp(0.0, (sh - 1) as f32);
    let (x0, y0) = (x.floor() as usize, y.floor() as usize);
    let (x1, y1) = ((x0 + 1).min(sw - 1), (y0 + 1).min(sh - 1));
    let (fx, fy) = (x - x0 as f32, y - y0 as f32);
    let p = |xx: usize, yy: usize| src[(yy * sw + xx) * 3 + c] as f32;
    let top = p(x0, y0) * (1.0 - fx) + p(x1, y0) * fx;
    let bottom = p(x0, y1) * (1.0 - fx) + p(x1, y1) * fx;
    top * (1.0 - fy) + bottom * fy
}

/// One crop resampled to `out_w x out_h`; `put(y, x, rgb)` gets 0..255 values.
pub fn crop_with(img: &RgbImage, bbox: [f32; 4], out_w: usize, out_h: usize, mut put: impl FnMut(usize, usize, [f32; 3])) {
    let [x0, y0, w, h] = crop_rect(bbox, out_w, out_h);
    let (sw, sh) = (img.width() as usize, img.height() as usize);
    let src = img.as_raw();
    let (step_x, step_y) = (w / out_w as f32, h / out_h as f32);
    for oy in 0..out_h {
        for ox in 0..out_w {
            let mut rgb = [0f32; 3];
            for (dx, dy) in [(0.25, 0.25), (0.75, 0.25), (0.25, 0.75), (0.75, 0.75)] {
                let (x, y) = (x0 + (ox as f32 + dx) * step_x, y0 + (oy as f32 + dy) * step_y);
                for (c, v) in rgb.iter_mut().enumerate() {
                    *v += bilinear(src, sw, sh, x, y, c) / 4.0;
                }
            }
            put(oy, ox, rgb);
        }
    }
}

/// A turned square of `img` (a hand's rectangle) resampled to `side x side`, upright: the
/// crop's y axis runs along the rectangle's. Samples outside the image repeat its edge.
pub fn rotated_crop(img: &RgbImage, rect: &HandRect, side: usize) -> RgbImage {
    let (sw, sh) = (img.width() as usize, img.height() as usize);
    let src = img.as_raw();
    let n = side as f32;
    RgbImage::from_fn(side as u32, side as u32, |ox, oy| {
        let mut rgb = [0f32; 3];
        for (dx, dy) in [(0.25, 0.25), (0.75, 0.25), (0.25, 0.75), (0.75, 0.75)] {
            let (x, y) = rect.to_source(ox as f32 + dx, oy as f32 + dy, n);
            for (c, v) in rgb.iter_mut().enumerate() {
                *v += bilinear(src, sw, sh, x, y, c) / 4.0;
            }
        }
        image::Rgb(rgb.map(|v| v.round().clamp(0.0, 255.0) as u8))
    })
}

/// Crops of `frames` as one model input batch per `spec` (layout, dtype, normalisation).
pub fn crop_batch(frames: &[&RgbImage], crops: &[Crop], spec: &FrameSpec) -> Tensor {
    let (h, w) = (spec.height, spec.width);
    let shape = match spec.layout {
        Layout::Nhwc => vec![crops.len(), h, w, 3],
        Layout::Nchw => vec![crops.len(), 3, h, w],
    };
    let mut data = vec![0f32; crops.len() * h * w * 3];
    for (i, c) in crops.iter().enumerate() {
        let Some(img) = frames.get(c.frame) else { continue };
        let out = &mut data[i * h * w * 3..(i + 1) * h * w * 3];
        crop_with(img, c.bbox, w, h, |y, x, rgb| {
            for (ch, v) in rgb.iter().enumerate() {
                let n = (v - spec.mean[ch]) / spec.std[ch];
                match spec.layout {
                    Layout::Nhwc => out[(y * w + x) * 3 + ch] = n,
                    Layout::Nchw => out[ch * h * w + y * w + x] = n,
                }
            }
        });
    }
    match spec.dtype {
        DType::I32 => Tensor::i32(shape, data.into_iter().map(|v| v.round() as i32).collect()),
        _ => Tensor::f32(shape, data),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crops_keep_the_aspect_and_sample_the_box() {
        // a 2:1 box: exactly the output's aspect, so no growth
        assert_eq!(crop_rect([10.0, 20.0, 30.0, 60.0], 32, 64), [10.0, 20.0, 20.0, 40.0]);
        // a wide box grows in height about its centre
        assert_eq!(crop_rect([0.0, 0.0, 40.0, 40.0], 32, 64), [0.0, -20.0, 40.0, 80.0]);
        // a red box on a blue frame: the crop of the box is red, the bars of its grown
        // neighbourhood blue
        let mut img = RgbImage::from_pixel(100, 100, image::Rgb([0, 0, 255]));
        for y in 40..60 {
            for x in 40..60 {
                img.put_pixel(x, y, image::Rgb([255, 0, 0]));
            }
        }
        let mut got = vec![[0f32; 3]; 8 * 4];
        crop_with(&img, [40.0, 40.0, 60.0, 60.0], 4, 8, |y, x, rgb| got[y * 4 + x] = rgb);
        assert_eq!(got[4 * 4 + 1], [255.0, 0.0, 0.0], "centre");
        assert_eq!(got[0], [0.0, 0.0, 255.0], "above the box");
    }

    #[test]
    fn a_rotated_crop_turns_its_rectangle_upright() {
        // left half red, right half blue; a square turned a quarter clockwise about the
        // centre: the crop's top (its -y axis) looks at the image's right, so blue is on top
        let img = RgbImage::from_fn(64, 64, |x, _| if x < 32 { image::Rgb([255, 0, 0]) } else { image::Rgb([0, 0, 255]) });
        let rect = HandRect { cx: 32.0, cy: 32.0, side: 32.0, angle: std::f32::consts::FRAC_PI_2 };
        let c = rotated_crop(&img, &rect, 16);
        assert_eq!(c.get_pixel(8, 1).0, [0, 0, 255], "top");
        assert_eq!(c.get_pixel(8, 14).0, [255, 0, 0], "bottom");
        assert_eq!(c.get_pixel(1, 1).0, c.get_pixel(14, 1).0, "left and right of one row");
    }
}
