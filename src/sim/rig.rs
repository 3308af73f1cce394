//! The simulated store's camera rig: where its ceiling and shelf cameras hang.

use super::math::*;
use super::world::{CROSS, DEPTH, EXIT, GATE, LANES, SHELF_HALF_DEPTH, SHELF_HEIGHT, SHELF_Y0, SHELF_Y1, UNIT_X, WIDTH};
use crate::geometry::camera::{CamKind, Camera, Sensor};

/// Places `n` cameras (4..=32). The first two watch the entrance and the exit, as in any
/// checkout-free store: a shopper's session binds where the gate camera sees them scan, and
/// ends where the exit camera sees them leave. Above the wall, they look into the store over
/// the gate lane (and the exit), so they also see the front cross aisle. The rest alternate:
/// ceiling cameras over the aisles, and shelf cameras on shelf tops looking across an aisle
/// at the opposite shelf.
pub fn rig(n: usize, width: usize, height: usize, fps: f64) -> Vec<Camera> {
    let sensor = Sensor { width, height, fps };
    let mut cams = Vec::with_capacity(n);
    let aisle_ys: Vec<f32> = (0..4).map(|k| SHELF_Y0 + (SHELF_Y1 - SHELF_Y0) * (k as f32 + 0.5) / 4.0).collect();
    let mut ceiling = Vec::new();
    // ceiling: over every lane, tilted about 40 degrees along it (a dome camera looking
    // straight down sees the tops of heads, which no person detector is trained on), and over
    // the front/back cross aisles
    for &y in &aisle_ys {
        for &x in &LANES {
            ceiling.push(([x, y - 1.4, 3.4], [x, y + 1.45, 0.0]));
        }
    }
    for &x in &[4.0, 12.0, 8.0] {
        for &y in &CROSS {
            ceiling.push(([x, y, 3.4], [x + 0.1, (y + DEPTH / 2.0) / 2.0, 0.0]));
        }
    }
    let mut shelf = Vec::new();
    for (u, &ux) in UNIT_X.iter().enumerate() {
        for side in [-1.0f32, 1.0] {
            // only where another shelving unit faces this one across the aisle
            let across = u as i32 + side as i32;
            if across < 0 || across >= UNIT_X.len() as i32 {
                continue;
            }
            for &y in &aisle_ys {
                let eye = [ux + side * 0.32, y, SHELF_HEIGHT + 0.25];
                // look across the aisle at the facing shelf, slightly down
                let target = [UNIT_X[across as usize] - side * SHELF_HALF_DEPTH, y + 0.4, 0.8];
                shelf.push((eye, target));
            }
        }
    }
    let (mut ci, mut si) = (0, 0);
    // order: spread the first ones over the store
    let spread = |v: &Vec<(V3, V3)>, k: usize| v[(k * 7) % v.len()];
    let doors = [(GATE, 1.0f32), (EXIT, -1.0)];
    for id in 0..n {
        if let Some(&(door, inward)) = doors.get(id) {
            // above the front wall beside the door, looking diagonally into the store
            let eye = [door[0] - inward * 0.6, 0.05, 3.2];
            let target = [door[0] + inward * 2.2, door[1] + 3.0, 0.0];
            cams.push(Camera::look_at(id, CamKind::Ceiling, eye, target, 95.0, sensor));
        } else if id % 2 == 0 && ci < ceiling.len() {
            let (e, t) = spread(&ceiling, ci);
            ci += 1;
            cams.push(Camera::look_at(id, CamKind::Ceiling, e, t, 95.0, sensor));
        } else {
            let (e, t) = spread(&shelf, si);
            si += 1;
            cams.push(Camera::look_at(id, CamKind::Shelf, e, t, 80.0, sensor));
        }
    }
    let _ = WIDTH;
    cams
}
