//! Drawing skeletons and boxes on RGB images (for `--draw`; debug output only).

use crate::models::heads::{Person, SKELETON};
use image::{Rgb, RgbImage};

const COLORS: [[u8; 3]; 6] = [[255, 64, 64], [64, 200, 64], [64, 128, 255], [255, 200, 0], [255, 0, 255], [0, 220, 220]];

fn dot(img: &mut RgbImage, x: f32, y: f32, r: i32, c: [u8; 3]) {
    let (cx, cy) = (x.round() as i32, y.round() as i32);
    for dy in -r..=r {
        for dx in -r..=r {
            if dx * dx + dy * dy <= r * r {
                let (px, py) = (cx + dx, cy + dy);
                if px >= 0 && py >= 0 && (px as u32) < img.width() && (py as u32) < img.height() {
                    img.put_pixel(px as u32, py as u32, Rgb(c));
                }
            }
        }
    }
}

fn line(img: &mut RgbImage, a: (f32, f32), b: (f32, f32), thick: i32, c: [u8; 3]) {
    let steps = ((b.0 - a.0).abs().max((b.1 - a.1).abs()).ceil() as usize).max(1);
    for i in 0..=steps {
        let t = i as f32 / steps as f32;
        dot(img, a.0 + (b.0 - a.0) * t, a.1 + (b.1 - a.1) * t, thick, c);
    }
}

/// Draws each person's box, skeleton and keypoints (keypoints below `kp_min` are skipped).
pub fn draw_persons(img: &mut RgbImage, persons: &[Person], kp_min: f32) {
    draw_labelled(img, persons, &[], kp_min);
}

/// As [`draw_persons`], with a label over each box (its identity: track, global id,
/// session) whose number, when there is one, picks the colour, so a person keeps theirs
/// across frames and cameras.
pub fn draw_labelled(img: &mut RgbImage, persons: &[Person], labels: &[(u64, String)], kp_min: f32) {
    let thick = ((img.width().max(img.height()) as f32 / 400.0).ceil() as i32).max(1);
    for (i, p) in persons.iter().enumerate() {
        let key = labels.get(i).map(|l| l.0 as usize).filter(|&k| k > 0).unwrap_or(i);
        let c = COLORS[key % COLORS.len()];
        if let Some((_, l)) = labels.get(i).filter(|l| !l.1.is_empty()) {
            let scale = thick.max(2);
            text(img, p.bbox[0] as i32, (p.bbox[1] as i32 - 6 * scale).max(0), &l.to_uppercase(), scale, c);
        }
        let [x0, y0, x1, y1] = p.bbox;
        for (a, b) in [((x0, y0), (x1, y0)), ((x1, y0), (x1, y1)), ((x1, y1), (x0, y1)), ((x0, y1), (x0, y0))] {
            line(img, a, b, (thick / 2).max(1), c);
        }
        for &(a, b) in &SKELETON {
            let (ka, kb) = (p.keypoints[a], p.keypoints[b]);
            if ka.score >= kp_min && kb.score >= kp_min {
                line(img, (ka.x, ka.y), (kb.x, kb.y), thick, c);
            }
        }
        for k in &p.keypoints {
            if k.score >= kp_min {
                dot(img, k.x, k.y, thick * 2, [255, 255, 255]);
                dot(img, k.x, k.y, thick, c);
            }
        }
    }
}

/// Draws each detection's box with its class label, coloured by class.
pub fn draw_detections(img: &mut RgbImage, found: &[crate::models::heads::Detection]) {
    let thick = ((img.width().max(img.height()) as f32 / 400.0).ceil() as i32).max(1);
    for d in found {
        let c = COLORS[d.class % COLORS.len()];
        let scale = thick.max(2);
        text(img, d.bbox[0] as i32, (d.bbox[1] as i32 - 6 * scale).max(0), &d.label.to_uppercase(), scale, c);
        let [x0, y0, x1, y1] = d.bbox;
        for (a, b) in [((x0, y0), (x1, y0)), ((x1, y0), (x1, y1)), ((x1, y1), (x0, y1)), ((x0, y1), (x0, y0))] {
            line(img, a, b, (thick / 2).max(1), c);
        }
    }
}

/// Draws each hand: its crop rectangle, its bones and landmarks, and its handedness.
pub fn draw_hands(img: &mut RgbImage, hands: &[(crate::models::heads::HandRect, crate::models::heads::Hand)]) {
    use crate::models::heads::{Handedness, HAND_SKELETON};
    let thick = ((img.width().max(img.height()) as f32 / 600.0).ceil() as i32).max(1);
    for (rect, h) in hands {
        let c = if h.handedness == Handedness::Left { COLORS[3] } else { COLORS[5] };
        // bones and joints in proportion to the hand, so that small hands stay readable
        let t = ((rect.side / 120.0).ceil() as i32).clamp(1, thick);
        let k = rect.corners();
        for i in 0..4 {
            line(img, k[i], k[(i + 1) % 4], (thick / 2).max(1), c);
        }
        let scale = thick.max(2);
        let top = k.iter().fold((f32::MAX, f32::MAX), |m, p| if p.1 < m.1 { *p } else { m });
        let label = if h.handedness == Handedness::Left { "LEFT" } else { "RIGHT" };
        text(img, top.0 as i32, (top.1 as i32 - 6 * scale).max(0), label, scale, c);
        for &(a, b) in &HAND_SKELETON {
            let (pa, pb) = (h.points[a], h.points[b]);
            line(img, (pa.x, pa.y), (pb.x, pb.y), (t / 2).max(1), c);
        }
        for p in &h.points {
            dot(img, p.x, p.y, t + 1, [255, 255, 255]);
            dot(img, p.x, p.y, t, COLORS[0]);
        }
    }
}

/// A thin line between pixel positions (for plots).
pub fn segment(img: &mut RgbImage, a: (i32, i32), b: (i32, i32), c: [u8; 3]) {
    line(img, (a.0 as f32, a.1 as f32), (b.0 as f32, b.1 as f32), 1, c);
}

/// 3x5 bitmap glyphs (rows top to bottom, 3 bits each) for plot labels: digits, a few
/// punctuation marks and upper-case letters.
fn glyph(c: char) -> Option<[u8; 5]> {
    Some(match c.to_ascii_uppercase() {
        '0' | 'O' => [7, 5, 5, 5, 7],
        '1' => [2, 6, 2, 2, 7],
        '2' => [7, 1, 7, 4, 7],
        '3' => [7, 1, 7, 1, 7],
        '4' => [5, 5, 7, 1, 1],
        '5' => [7, 4, 7, 1, 7],
        '6' => [7, 4, 7, 5, 7],
        '7' => [7, 1, 1, 1, 1],
        '8' => [7, 5, 7, 5, 7],
        '9' => [7, 5, 7, 1, 7],
        '.' => [0, 0, 0, 0, 2],
        ',' => [0, 0, 0, 2, 4],
        ':' => [0, 2, 0, 2, 0],
        '-' => [0, 0, 7, 0, 0],
        '/' => [1, 1, 2, 4, 4],
        '(' => [2, 4, 4, 4, 2],
        ')' => [2, 1, 1, 1, 2],
        '=' => [0, 7, 0, 7, 0],
        'A' => [2, 5, 7, 5, 5],
        'B' => [6, 5, 6, 5, 6],
        'C' => [7, 4, 4, 4, 7],
        'D' => [6, 5, 5, 5, 6],
        'E' => [7, 4, 6, 4, 7],
        'F' => [7, 4, 6, 4, 4],
        'G' => [7, 4, 5, 5, 7],
        'H' => [5, 5, 7, 5, 5],
        'I' => [7, 2, 2, 2, 7],
        'K' => [5, 5, 6, 5, 5],
        'L' => [4, 4, 4, 4, 7],
        'M' => [5, 7, 7, 5, 5],
        'N' => [6, 5, 5, 5, 5],
        'P' => [7, 5, 7, 4, 4],
        'R' => [6, 5, 6, 5, 5],
        'S' => [7, 4, 7, 1, 7],
        'T' => [7, 2, 2, 2, 2],
        'U' => [5, 5, 5, 5, 7],
        'V' => [5, 5, 5, 5, 2],
        'W' => [5, 5, 7, 7, 5],
        'X' => [5, 5, 2, 5, 5],
        'Y' => [5, 5, 2, 2, 2],
        ' ' => [0; 5],
        _ => return None,
    })
}

/// Writes `s` at (x, y) with 3x5 glyphs scaled by `scale` (unknown characters are blanks).
pub fn text(img: &mut RgbImage, x: i32, y: i32, s: &str, scale: i32, c: [u8; 3]) {
    for (i, ch) in s.chars().enumerate() {
        let Some(g) = glyph(ch) else { continue };
        let gx = x + i as i32 * 4 * scale;
        for (row, bits) in g.iter().enumerate() {
            for col in 0..3 {
                if bits & (4 >> col) != 0 {
                    for dy in 0..scale {
                        for dx in 0..scale {
                            let (px, py) = (gx + col * scale + dx, y + row as i32 * scale + dy);
                            if px >= 0 && py >= 0 && (px as u32) < img.width() && (py as u32) < img.height() {
                                img.put_pixel(px as u32, py as u32, Rgb(c));
                            }
                        }
                    }
                }
            }
        }
    }
}
