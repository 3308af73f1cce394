//! Articulated bodies: a COCO-17 skeleton posed from a shopper's state (walking phase,
//! heading, reach), and the volumes drawn around it (capsule limbs, torso, head, hands).

use super::math::*;
use super::world::Shopper;
use crate::events::Hand;

/// 17 COCO keypoints in world metres.
pub type Pose = [V3; 17];

/// A drawable volume: a capsule (a sphere when `a == b`).
#[derive(Clone, Copy, Debug)]
pub struct Capsule {
    pub a: V3,
    pub b: V3,
    pub r: f32,
    pub color: [u8; 3],
    /// 0 solid, 1 stripes, 2 checks (applied along the capsule)
    pub pattern: u8,
}

fn arm(shoulder: V3, target: V3, upper: f32, fore: f32, out: V3) -> (V3, V3) {
    let d = sub(target, shoulder);
    let dist = norm(d).clamp(0.05, (upper + fore) * 0.999);
    let dir = normalize(d);
    let wrist = add(shoulder, scale(dir, dist));
    // law of cosines: distance of the elbow from the shoulder-wrist line
    let a = (upper * upper - fore * fore + dist * dist) / (2.0 * dist);
    let h = (upper * upper - a * a).max(0.0).sqrt();
    // bend the elbow outwards and down
    let mut bend = sub(normalize(add(out, [0.0, 0.0, -0.6])), scale(dir, dot(normalize(add(out, [0.0, 0.0, -0.6])), dir)));
    if norm(bend) < 1e-4 {
        bend = [0.0, 0.0, -1.0];
    }
    let elbow = add(add(shoulder, scale(dir, a)), scale(normalize(bend), h));
    (elbow, wrist)
}

impl Shopper {
    /// The shopper's COCO-17 pose now.
    pub fn pose(&self) -> Pose {
        pose(self)
    }
}

/// Poses a shopper.
pub fn pose(s: &Shopper) -> Pose {
    let h = s.look.height;
    let w = s.look.build * h / 1.75;
    let f = [s.heading.cos(), s.heading.sin(), 0.0];
    let l = [-s.heading.sin(), s.heading.cos(), 0.0];
    let base = [s.pos[0], s.pos[1], 0.0];
    let at = |fw: f32, lf: f32, z: f32| add(add(add(base, scale(f, fw)), scale(l, lf)), [0.0, 0.0, z]);
    let walking = s.reach == 0.0 && s.holding.is_none();
    let sw = s.phase.sin() * if walking { 1.0 } else { 0.15 };
    let lift = |p: f32| (p.cos().max(0.0)) * 0.08;
    let hip_z = 0.52 * h;
    let sh_z = 0.81 * h;
    let lhip = at(0.0, 0.09 * w, hip_z);
    let rhip = at(0.0, -0.09 * w, hip_z);
    let lank = at(0.22 * sw, 0.1 * w, 0.05 * h + lift(s.phase));
    let rank = at(-0.22 * sw, -0.1 * w, 0.05 * h + lift(s.phase + std::f32::consts::PI));
    let knee = |hip: V3, ank: V3| add(lerp(hip, ank, 0.5), scale(f, 0.05 + 0.04 * sw.abs()));
    let lknee = knee(lhip, lank);
    let rknee = knee(rhip, rank);
    let lsh = at(0.0, 0.19 * w, sh_z);
    let rsh = at(0.0, -0.19 * w, sh_z);
    let upper = 0.19 * h;
    let fore = 0.17 * h;
    let rest = |sh: V3, side: f32, swing: f32| {
        add(add(sh, [0.0, 0.0, -(upper + fore) * 0.95]), add(scale(f, 0.18 * swing), scale(l, 0.05 * side)))
    };
    let mut lw_t = rest(lsh, 1.0, -sw);
    let mut rw_t = rest(rsh, -1.0, sw);
    let chest = at(0.32, 0.0, 0.7 * h);
    if s.holding.is_some() && s.reach == 0.0 {
        // inspecting: item held in front of the chest
        match s.hand {
            Hand::Left => lw_t = add(chest, scale(l, 0.06)),
            Hand::Right => rw_t = add(chest, scale(l, -0.06)),
            Hand::Both => {
                lw_t = add(chest, scale(l, 0.08));
                rw_t = add(chest, scale(l, -0.08));
            }
        }
    }
    if s.reach > 0.0 {
        let r = s.reach.clamp(0.0, 1.0);
        let t = s.reach_to;
        match s.hand {
            Hand::Left => lw_t = lerp(lw_t, add(t, scale(l, 0.04)), r),
            Hand::Right => rw_t = lerp(rw_t, add(t, scale(l, -0.04)), r),
            Hand::Both => {
                lw_t = lerp(lw_t, add(t, scale(l, 0.08)), r);
                rw_t = lerp(rw_t, add(t, scale(l, -0.08)), r);
            }
        }
    }
    let (lel, lwr) = arm(lsh, lw_t, upper, fore, l);
    let (rel, rwr) = arm(rsh, rw_t, upper, fore, scale(l, -1.0));
    let head = at(0.02, 0.0, 0.925 * h);
    let nose = add(head, scale(f, 0.1 * w.min(1.1)));
    let eye = |side: f32| add(add(head, scale(f, 0.085)), add(scale(l, 0.035 * side), [0.0, 0.0, 0.03]));
    let ear = |side: f32| add(head, add(scale(l, 0.075 * side), [0.0, 0.0, 0.01]));
    [nose, eye(1.0), eye(-1.0), ear(1.0), ear(-1.0), lsh, rsh, lel, rel, lwr, rwr, lhip, rhip, lknee, rknee, lank, rank]
}

/// The volumes of a posed body.
pub fn volumes(s: &Shopper, p: &Pose, out: &mut Vec<Capsule>) {
    let h = s.look.height;
    let w = s.look.build * h / 1.75;
    let lk = &s.look;
    let shoe = [40, 38, 36];
    let c = |a: V3, b: V3, r: f32, color: [u8; 3], pattern: u8| Capsule { a, b, r, color, pattern };
    let mid = |a: V3, b: V3| lerp(a, b, 0.5);
    let f = [s.heading.cos(), s.heading.sin(), 0.0];
    // legs
    out.push(c(p[11], p[13], 0.075 * w, lk.pants, 0));
    out.push(c(p[13], p[15], 0.058 * w, lk.pants, 0));
    out.push(c(p[12], p[14], 0.075 * w, lk.pants, 0));
    out.push(c(p[14], p[16], 0.058 * w, lk.pants, 0));
    out.push(c(p[15], add(p[15], scale(f, 0.14)), 0.045, shoe, 0));
    out.push(c(p[16], add(p[16], scale(f, 0.14)), 0.045, shoe, 0));
    // torso: a trunk from the pelvis to the neck, a shoulder girdle and a pelvis across the
    // hips, so the outline narrows from the shoulders to the waist as a person's does
    let pelvis = mid(p[11], p[12]);
    let neck = add(mid(p[5], p[6]), [0.0, 0.0, 0.03]);
    let chest = lerp(pelvis, neck, 0.62);
    out.push(c(lerp(pelvis, neck, 0.2), chest, 0.12 * w, lk.shirt, lk.pattern));
    out.push(c(chest, add(neck, [0.0, 0.0, -0.06]), 0.125 * w, lk.shirt, lk.pattern));
    out.push(c(add(p[5], [0.0, 0.0, -0.05]), add(p[6], [0.0, 0.0, -0.05]), 0.07 * w, lk.shirt, lk.pattern));
    out.push(c(add(p[11], [0.0, 0.0, 0.03]), add(p[12], [0.0, 0.0, 0.03]), 0.1 * w, lk.pants, 0));
    // arms
    out.push(c(p[5], p[7], 0.05 * w, lk.shirt, lk.pattern));
    out.push(c(p[7], p[9], 0.042 * w, lk.skin, 0));
    out.push(c(p[6], p[8], 0.05 * w, lk.shirt, lk.pattern));
    out.push(c(p[8], p[10], 0.042 * w, lk.skin, 0));
    out.push(c(p[9], p[9], 0.048, lk.skin, 0));
    out.push(c(p[10], p[10], 0.048, lk.skin, 0));
    // neck and head: skin, hair over the top and back, and a face (eyes, brows, nose, mouth)
    // on the front; ears at the ear keypoints
    out.push(c(neck, add(neck, [0.0, 0.0, 0.06]), 0.05, lk.skin, 0));
    let head = mid(p[3], p[4]);
    let hr = 0.1 * w.clamp(0.9, 1.1);
    out.push(c(head, head, hr, lk.skin, 0));
    let back = add(head, add(scale(f, -0.035), [0.0, 0.0, 0.035]));
    out.push(c(back, back, hr * 0.97, lk.hair, 0));
    let on_face = |q: V3, depth: f32| add(head, scale(normalize(sub(q, head)), hr - depth));
    let dark = [30, 24, 22];
    for e in [p[1], p[2]] {
        let eye = on_face(e, 0.008);
        out.push(c(eye, eye, 0.014, dark, 0));
        let brow = on_face(add(e, [0.0, 0.0, 0.025]), 0.006);
        out.push(c(brow, brow, 0.011, lk.hair, 0));
    }
    let nose = on_face(add(head, add(scale(f, 1.0), [0.0, 0.0, -0.01])), -0.012);
    out.push(c(nose, nose, 0.018, shade_of(lk.skin, 0.9), 0));
    let mouth = on_face(add(head, add(scale(f, 1.0), [0.0, 0.0, -0.055])), 0.004);
    let across = [-f[1], f[0], 0.0];
    out.push(c(add(mouth, scale(across, -0.018)), add(mouth, scale(across, 0.018)), 0.008, [120, 50, 50], 0));
    for e in [p[3], p[4]] {
        out.push(c(e, e, 0.025, shade_of(lk.skin, 0.92), 0));
    }
}

fn shade_of(c: [u8; 3], k: f32) -> [u8; 3] {
    [(c[0] as f32 * k) as u8, (c[1] as f32 * k) as u8, (c[2] as f32 * k) as u8]
}
