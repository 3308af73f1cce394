//! A small software rasteriser: z-buffered triangles (shelves, products), ray-cast floor and
//! walls, and screen-space capsules with depth for bodies; simple lighting and sensor noise.
//! Static scenery is cached per camera and redrawn only when shelf stock changes.

use super::body::Capsule;
use super::math::*;
use super::world::{World, DEPTH, ROW_Z, SHELF_HALF_DEPTH, SHELF_HEIGHT, SHELF_Y0, SHELF_Y1, UNIT_X, WIDTH};
use crate::geometry::camera::{Camera, NEAR};

const LIGHT: V3 = [0.35, -0.45, 0.82];
const WALL_H: f32 = 3.6;

/// One camera's buffers.
#[derive(Clone, Debug)]
pub struct Frame {
    pub width: usize,
    pub height: usize,
    /// RGB8, row-major.
    pub rgb: Vec<u8>,
    /// Camera-space depth in metres.
    pub depth: Vec<f32>,
    /// 0: scenery, k: shopper with id k.
    pub ids: Vec<u32>,
}

impl Frame {
    pub fn new(width: usize, height: usize) -> Frame {
        Frame { width, height, rgb: vec![0; width * height * 3], depth: vec![f32::INFINITY; width * height], ids: vec![0; width * height] }
    }
}

/// Per-camera renderer with its cached scenery.
#[derive(Debug)]
pub struct CamRenderer {
    pub cam: Camera,
    scenery: Frame,
    pub frame: Frame,
    noise: bool,
}

fn shade(c: [u8; 3], k: f32) -> [u8; 3] {
    [(c[0] as f32 * k).min(255.0) as u8, (c[1] as f32 * k).min(255.0) as u8, (c[2] as f32 * k).min(255.0) as u8]
}

/// An axis-aligned box.
struct Boxy {
    lo: V3,
    hi: V3,
    color: [u8; 3],
}

impl CamRenderer {
    pub fn new(cam: Camera, noise: bool) -> Self {
        let (w, h) = (cam.width, cam.height);
        CamRenderer { cam, scenery: Frame::new(w, h), frame: Frame::new(w, h), noise }
    }

    /// Redraws the cached scenery: room, shelves and the products on them.
    pub fn draw_scenery(&mut self, world: &World) {
        let cam = self.cam.clone();
        let f = &mut self.scenery;
        // room: floor, walls and ceiling by ray casting
        for v in 0..f.height {
            for u in 0..f.width {
                let d = cam.ray(u as f32 + 0.5, v as f32 + 0.5);
                let c = cam.center;
                let mut best = (f32::INFINITY, [0u8; 3]);
                // floor and ceiling
                for (z, floor) in [(0.0f32, true), (WALL_H, false)] {
                    if d[2].abs() > 1e-6 {
                        let t = (z - c[2]) / d[2];
                        if t > NEAR && t < best.0 {
                            let p = add(c, scale(d, t));
                            if (-0.01..=WIDTH + 0.01).contains(&p[0]) && (-0.01..=DEPTH + 0.01).contains(&p[1]) {
                                let col = if floor {
                                    let tile = ((p[0] * 2.0).floor() as i32 + (p[1] * 2.0).floor() as i32) & 1;
                                    let base = if tile == 0 { 196u8 } else { 178 };
                                    let gx = (p[0] * 2.0).fract().min(1.0 - (p[0] * 2.0).fract()) < 0.02
                                        || (p[1] * 2.0).fract().min(1.0 - (p[1] * 2.0).fract()) < 0.02;
                                    if gx {
                                        [150, 150, 146]
                                    } else {
                                        [base, base, base - 8]
                                    }
                                } else {
                                    [236, 236, 230]
                                };
                                best = (t, col);
                            }
                        }
                    }
                }
                for (axis, val, col) in [
                    (0usize, 0.0f32, [205u8, 190, 160]),
                    (0, WIDTH, [205, 190, 160]),
                    (1, 0.0, [180, 196, 205]),
                    (1, DEPTH, [180, 196, 205]),
                ] {
                    if d[axis].abs() > 1e-6 {
                        let t = (val - c[axis]) / d[axis];
                        if t > NEAR && t < best.0 {
                            let p = add(c, scale(d, t));
                            let o = 1 - axis;
                            let lim = if o == 0 { WIDTH } else { DEPTH };
                            if (0.0..=lim).contains(&p[o]) && (0.0..=WALL_H).contains(&p[2]) {
                                let band = if p[2] < 0.15 { 0.6 } else { 1.0 };
                                best = (t, shade(col, band));
                            }
                        }
                    }
                }
                let i = v * f.width + u;
                f.depth[i] = best.0;
                f.ids[i] = 0;
                f.rgb[i * 3..i * 3 + 3].copy_from_slice(&best.1);
            }
        }
        // exit and entrance mats
        let mut boxes = vec![
            Boxy { lo: [super::world::GATE[0] - 0.6, 0.0, 0.0], hi: [super::world::GATE[0] + 0.6, 0.9, 0.01], color: [40, 120, 60] },
            Boxy { lo: [super::world::EXIT[0] - 0.6, 0.0, 0.0], hi: [super::world::EXIT[0] + 0.6, 0.9, 0.01], color: [150, 50, 40] },
        ];
        // shelving units: base, back panel, boards, top
        for &ux in &UNIT_X {
            let (x0, x1) = (ux - SHELF_HALF_DEPTH, ux + SHELF_HALF_DEPTH);
            let metal = [120, 124, 130];
            boxes.push(Boxy { lo: [x0, SHELF_Y0, 0.0], hi: [x1, SHELF_Y1, 0.18], color: [90, 92, 98] });
            boxes.push(Boxy { lo: [ux - 0.03, SHELF_Y0, 0.18], hi: [ux + 0.03, SHELF_Y1, SHELF_HEIGHT], color: [150, 152, 158] });
            boxes.push(Boxy { lo: [x0, SHELF_Y0, SHELF_HEIGHT - 0.03], hi: [x1, SHELF_Y1, SHELF_HEIGHT], color: metal });
            for &z in &ROW_Z {
                boxes.push(Boxy { lo: [x0, SHELF_Y0, z - 0.03], hi: [x1, SHELF_Y1, z], color: metal });
            }
            for y in [SHELF_Y0, SHELF_Y1] {
                boxes.push(Boxy { lo: [x0, y - 0.02, 0.0], hi: [x1, y + 0.02, SHELF_HEIGHT], color: [100, 104, 110] });
            }
        }
        // products: items of each facing in a row from the front edge backwards
        for fc in &world.facings {
            for (k, &item) in fc.items.iter().rev().take(4).enumerate() {
                let sku = &world.skus[item];
                let [sx, sy, sz] = sku.size;
                let front = fc.pos[0];
                let xin = front - fc.side as f32 * (0.02 + k as f32 * (sx + 0.01));
                let (xa, xb) = if fc.side < 0 { (xin, xin + sx) } else { (xin - sx, xin) };
                boxes.push(Boxy {
                    lo: [xa, fc.pos[1] - sy / 2.0, fc.pos[2]],
                    hi: [xb, fc.pos[1] + sy / 2.0, fc.pos[2] + sz],
                    color: sku.color,
                });
            }
        }
        for b in &boxes {
            draw_box(f, &cam, b);
        }
    }

    /// Renders one frame: cached scenery, then bodies and what they hold, then noise.
    pub fn render(&mut self, world: &World, frame_no: u64) {
        let f = &mut self.frame;
        f.rgb.copy_from_slice(&self.scenery.rgb);
        f.depth.copy_from_slice(&self.scenery.depth);
        f.ids.fill(0);
        let mut caps = Vec::with_capacity(24);
        for s in world.shoppers.iter().filter(|s| s.present()) {
            caps.clear();
            let p = s.pose();
            super::body::volumes(s, &p, &mut caps);
            for c in &caps {
                draw_capsule(f, &self.cam, c, s.id);
            }
            // the item in hand, and a basket for carried items
            if let Some(item) = s.holding {
                let wr = match s.hand {
                    crate::events::Hand::Left => p[9],
                    _ => p[10],
                };
                let sz = world.skus[item].size;
                draw_box(
                    f,
                    &self.cam,
                    &Boxy {
                        lo: sub(wr, [sz[0] / 2.0, sz[1] / 2.0, 0.0]),
                        hi: add(wr, [sz[0] / 2.0, sz[1] / 2.0, sz[2]]),
                        color: world.skus[item].color,
                    },
                );
            }
            if !s.carried.is_empty() {
                let hip = lerp(p[12], p[10], 0.6);
                let col = world.skus[s.carried[s.carried.len() - 1]].color;
                draw_capsule(
                    f,
                    &self.cam,
                    &Capsule { a: add(hip, [0.0, 0.0, -0.08]), b: add(hip, [0.0, 0.0, 0.04]), r: 0.11, color: shade(col, 0.8), pattern: 0 },
                    s.id,
                );
            }
        }
        if self.noise {
            let cam = self.cam.id as u32;
            for (i, px) in f.rgb.iter_mut().enumerate() {
                let h = hash3(i as u32, frame_no as u32, cam);
                // roughly triangular noise in [-6, 6]
                let n = ((h & 7) as i32 + ((h >> 3) & 7) as i32) - 7;
                *px = (*px as i32 + n).clamp(0, 255) as u8;
            }
        }
    }
}

/// Rasterises an axis-aligned box as 12 flat-shaded triangles.
fn draw_box(f: &mut Frame, cam: &Camera, b: &Boxy) {
    let (l, h) = (b.lo, b.hi);
    let v = |x: usize, y: usize, z: usize| {
        [if x == 0 { l[0] } else { h[0] }, if y == 0 { l[1] } else { h[1] }, if z == 0 { l[2] } else { h[2] }]
    };
    // faces: (normal, 4 corners)
    let faces: [(V3, [V3; 4]); 6] = [
        ([-1.0, 0.0, 0.0], [v(0, 0, 0), v(0, 1, 0), v(0, 1, 1), v(0, 0, 1)]),
        ([1.0, 0.0, 0.0], [v(1, 0, 0), v(1, 0, 1), v(1, 1, 1), v(1, 1, 0)]),
        ([0.0, -1.0, 0.0], [v(0, 0, 0), v(0, 0, 1), v(1, 0, 1), v(1, 0, 0)]),
        ([0.0, 1.0, 0.0], [v(0, 1, 0), v(1, 1, 0), v(1, 1, 1), v(0, 1, 1)]),
        ([0.0, 0.0, -1.0], [v(0, 0, 0), v(1, 0, 0), v(1, 1, 0), v(0, 1, 0)]),
        ([0.0, 0.0, 1.0], [v(0, 0, 1), v(0, 1, 1), v(1, 1, 1), v(1, 0, 1)]),
    ];
    for (n, q) in faces {
        // back-face cull
        if dot(n, sub(q[0], cam.center)) >= 0.0 {
            continue;
        }
        let k = 0.45 + 0.55 * dot(n, normalize(LIGHT)).max(0.0);
        let col = shade(b.color, k);
        draw_tri(f, cam, [q[0], q[1], q[2]], col);
        draw_tri(f, cam, [q[0], q[2], q[3]], col);
    }
}

/// Z-buffered triangle with near-plane clipping and perspective-correct depth.
fn draw_tri(f: &mut Frame, cam: &Camera, w: [V3; 3], col: [u8; 3]) {
    let c: Vec<V3> = w.iter().map(|&p| cam.to_cam(p)).collect();
    // clip against z = NEAR (Sutherland-Hodgman)
    let mut poly: Vec<V3> = Vec::with_capacity(4);
    for i in 0..3 {
        let (a, b) = (c[i], c[(i + 1) % 3]);
        let (ina, inb) = (a[2] > NEAR, b[2] > NEAR);
        if ina {
            poly.push(a);
        }
        if ina != inb {
            let t = (NEAR - a[2]) / (b[2] - a[2]);
            poly.push(lerp(a, b, t));
        }
    }
    if poly.len() < 3 {
        return;
    }
    let proj: Vec<(f32, f32, f32)> =
        poly.iter().map(|p| (cam.fx * p[0] / p[2] + cam.cx, cam.fy * p[1] / p[2] + cam.cy, 1.0 / p[2])).collect();
    for k in 1..proj.len() - 1 {
        raster_tri(f, proj[0], proj[k], proj[k + 1], col);
    }
}

fn raster_tri(f: &mut Frame, a: (f32, f32, f32), b: (f32, f32, f32), c: (f32, f32, f32), col: [u8; 3]) {
    let area = (b.0 - a.0) * (c.1 - a.1) - (b.1 - a.1) * (c.0 - a.0);
    if area.abs() < 1e-6 {
        return;
    }
    let x0 = a.0.min(b.0).min(c.0).floor().max(0.0) as usize;
    let x1 = (a.0.max(b.0).max(c.0).ceil() as isize).min(f.width as isize - 1);
    let y0 = a.1.min(b.1).min(c.1).floor().max(0.0) as usize;
    let y1 = (a.1.max(b.1).max(c.1).ceil() as isize).min(f.height as isize - 1);
    if x1 < 0 || y1 < 0 {
        return;
    }
    let inv = 1.0 / area;
    for y in y0..=y1 as usize {
        let py = y as f32 + 0.5;
        for x in x0..=x1 as usize {
            let px = x as f32 + 0.5;
            let w0 = ((b.0 - px) * (c.1 - py) - (b.1 - py) * (c.0 - px)) * inv;
            let w1 = ((c.0 - px) * (a.1 - py) - (c.1 - py) * (a.0 - px)) * inv;
            let w2 = 1.0 - w0 - w1;
            if w0 < 0.0 || w1 < 0.0 || w2 < 0.0 {
                continue;
            }
            let iz = w0 * a.2 + w1 * b.2 + w2 * c.2;
            let z = 1.0 / iz;
            let i = y * f.width + x;
            if z < f.depth[i] {
                f.depth[i] = z;
                f.ids[i] = 0;
                f.rgb[i * 3..i * 3 + 3].copy_from_slice(&col);
            }
        }
    }
}

/// A capsule on the image plane: end centres, their radii (pixels) and depths (metres).
struct ScreenCapsule {
    pa: (f32, f32),
    pb: (f32, f32),
    ra: f32,
    rb: f32,
    za: f32,
    zb: f32,
    /// pb - pa and its squared length (at least 1e-9)
    d: (f32, f32),
    len2: f32,
}

impl ScreenCapsule {
    /// Projects a capsule, cut at the near plane; `None` when it is all behind.
    fn project(cam: &Camera, c: &Capsule) -> Option<ScreenCapsule> {
        let (mut a, mut b) = (cam.to_cam(c.a), cam.to_cam(c.b));
        let near = NEAR + c.r;
        if a[2] <= near && b[2] <= near {
            return None;
        }
        if a[2] <= near {
            a = lerp(a, b, (near - a[2]) / (b[2] - a[2]));
        } else if b[2] <= near {
            b = lerp(b, a, (near - b[2]) / (a[2] - b[2]));
        }
        let pa = (cam.fx * a[0] / a[2] + cam.cx, cam.fy * a[1] / a[2] + cam.cy);
        let pb = (cam.fx * b[0] / b[2] + cam.cx, cam.fy * b[1] / b[2] + cam.cy);
        let d = (pb.0 - pa.0, pb.1 - pa.1);
        Some(ScreenCapsule {
            pa,
            pb,
            ra: cam.fx * c.r / a[2],
            rb: cam.fx * c.r / b[2],
            za: a[2],
            zb: b[2],
            d,
            len2: (d.0 * d.0 + d.1 * d.1).max(1e-9),
        })
    }

    /// Pixel bounds (unclipped): x0, y0, x1, y1 inclusive.
    fn bounds(&self) -> (f32, f32, f32, f32) {
        let r = self.ra.max(self.rb);
        let (pa, pb) = (self.pa, self.pb);
        ((pa.0.min(pb.0) - r).floor(), (pa.1.min(pb.1) - r).floor(), (pa.0.max(pb.0) + r).ceil(), (pa.1.max(pb.1) + r).ceil())
    }

    /// Whether the pixel centre (px, py) is inside: the parameter along the axis, the offset
    /// from the axis and its squared length, and the radius there.
    #[inline]
    fn hit(&self, px: f32, py: f32) -> Option<(f32, f32, f32, f32)> {
        let (d, len2) = (self.d, self.len2);
        let t = (((px - self.pa.0) * d.0 + (py - self.pa.1) * d.1) / len2).clamp(0.0, 1.0);
        let (dx, dy) = (px - (self.pa.0 + d.0 * t), py - (self.pa.1 + d.1 * t));
        let rr = self.ra + (self.rb - self.ra) * t;
        let dd2 = dx * dx + dy * dy;
        (dd2 < rr * rr).then_some((t, dx, dd2, rr))
    }
}

/// A body's silhouette as if nothing occluded it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Silhouette {
    /// Pixels inside the frame.
    pub in_frame: u64,
    /// Pixels on an unbounded sensor: the parts out of the frame count too.
    pub total: u64,
    /// [x0, y0, x1, y1] of the in-frame pixels (the full-body box clipped to the image).
    pub bbox: Option<[f32; 4]>,
}

/// The unoccluded silhouette of a set of capsules (one body) in a camera. Bodies far larger
/// than the frame (right in front of a lens) are sampled on a coarser grid.
pub fn silhouette(cam: &Camera, caps: &[Capsule]) -> Silhouette {
    let scs: Vec<ScreenCapsule> = caps.iter().filter_map(|c| ScreenCapsule::project(cam, c)).collect();
    let (w, h) = (cam.width as f32, cam.height as f32);
    let mut r = (f32::MAX, f32::MAX, f32::MIN, f32::MIN);
    for sc in &scs {
        let b = sc.bounds();
        r = (r.0.min(b.0), r.1.min(b.1), r.2.max(b.2), r.3.max(b.3));
    }
    let none = Silhouette { in_frame: 0, total: 0, bbox: None };
    if scs.is_empty() {
        return none;
    }
    // at most 4 frames' worth of margin on each side
    let (x0, y0) = (r.0.max(-4.0 * w) as i64, r.1.max(-4.0 * h) as i64);
    let (x1, y1) = (r.2.min(5.0 * w) as i64, r.3.min(5.0 * h) as i64);
    if x1 < x0 || y1 < y0 {
        return none;
    }
    let area = ((x1 - x0 + 1) * (y1 - y0 + 1)) as f64;
    let step = (area / (4.0 * w as f64 * h as f64)).sqrt().ceil().max(1.0) as i64;
    let (gw, gh) = ((x1 - x0) / step + 1, (y1 - y0) / step + 1);
    let mut mask = vec![false; (gw * gh) as usize];
    for sc in &scs {
        let b = sc.bounds();
        let gx0 = ((b.0 as i64 - x0).max(0) / step).min(gw - 1);
        let gy0 = ((b.1 as i64 - y0).max(0) / step).min(gh - 1);
        let gx1 = ((b.2 as i64 - x0).max(0) / step).min(gw - 1);
        let gy1 = ((b.3 as i64 - y0).max(0) / step).min(gh - 1);
        for gy in gy0..=gy1 {
            let py = (y0 + gy * step) as f32 + 0.5;
            for gx in gx0..=gx1 {
                let i = (gy * gw + gx) as usize;
                if !mask[i] && sc.hit((x0 + gx * step) as f32 + 0.5, py).is_some() {
                    mask[i] = true;
                }
            }
        }
    }
    let (mut s, weight) = (none, (step * step) as u64);
    let mut bb = [f32::MAX, f32::MAX, f32::MIN, f32::MIN];
    for gy in 0..gh {
        for gx in 0..gw {
            if !mask[(gy * gw + gx) as usize] {
                continue;
            }
            s.total += weight;
            let (x, y) = ((x0 + gx * step) as f32, (y0 + gy * step) as f32);
            if x >= 0.0 && y >= 0.0 && x < w && y < h {
                s.in_frame += weight;
                bb = [bb[0].min(x), bb[1].min(y), bb[2].max((x + step as f32).min(w)), bb[3].max((y + step as f32).min(h))];
            }
        }
    }
    s.bbox = (s.in_frame > 0).then_some(bb);
    s
}

/// Screen-space capsule with a spherical depth profile and shading.
fn draw_capsule(f: &mut Frame, cam: &Camera, c: &Capsule, id: u32) {
    let Some(sc) = ScreenCapsule::project(cam, c) else { return };
    let (b0, b1, b2, b3) = sc.bounds();
    let x0 = b0.max(0.0) as isize;
    let x1 = (b2 as isize).min(f.width as isize - 1);
    let y0 = b1.max(0.0) as isize;
    let y1 = (b3 as isize).min(f.height as isize - 1);
    if x1 < x0 || y1 < y0 {
        return;
    }
    let light_side = (LIGHT[0] * 0.7 + LIGHT[1] * 0.3).signum();
    for y in y0..=y1 {
        let py = y as f32 + 0.5;
        for x in x0..=x1 {
            let px = x as f32 + 0.5;
            let Some((t, dx, dd2, rr)) = sc.hit(px, py) else { continue };
            let q = (1.0 - dd2 / (rr * rr)).sqrt();
            let z = sc.za + (sc.zb - sc.za) * t - c.r * q;
            let i = y as usize * f.width + x as usize;
            if z >= f.depth[i] {
                continue;
            }
            // lambert-ish: bright in the middle, one side lit
            let side = (dx * light_side) / rr.max(1e-3);
            let mut k = 0.5 + 0.4 * q + 0.15 * side;
            if c.pattern != 0 {
                let wz = c.a[2] + (c.b[2] - c.a[2]) * t;
                let stripe = ((wz * 14.0).floor() as i32) & 1;
                let check = if c.pattern == 2 { (dx > 0.0) as i32 } else { 0 };
                if (stripe ^ check) == 1 {
                    k *= 0.82;
                }
            }
            f.depth[i] = z;
            f.ids[i] = id;
            f.rgb[i * 3..i * 3 + 3].copy_from_slice(&shade(c.color, k));
        }
    }
}
