//! The store: floor plan, shelves with SKU facings, and shoppers who walk, reach, pick up,
//! inspect, put back (sometimes in the wrong place), hand items to a companion and leave.
//! Everything follows from the seed.

use super::math::*;
use crate::events::{Event, EventKind, GateScan, Hand, Receipt};
use serde::Serialize;

/// Store floor: x in [0, WIDTH], y in [0, DEPTH], metres; z is up.
pub const WIDTH: f32 = 16.0;
pub const DEPTH: f32 = 12.0;
pub const GATE: [f32; 2] = [1.5, 0.6];
pub const EXIT: [f32; 2] = [14.5, 0.6];
/// The one gate lane's id; scans there check sessions in.
pub const GATE_LANE: &str = "gate-1";
/// Centre x of each shelving unit; each spans y in [SHELF_Y0, SHELF_Y1].
pub const UNIT_X: [f32; 3] = [4.0, 8.0, 12.0];
pub const SHELF_Y0: f32 = 3.0;
pub const SHELF_Y1: f32 = 9.0;
pub const SHELF_HALF_DEPTH: f32 = 0.3;
pub const SHELF_HEIGHT: f32 = 1.8;
pub const ROW_Z: [f32; 3] = [0.55, 1.05, 1.5];
pub const FACINGS_PER_ROW: usize = 6;
/// Walking lanes (x) and cross aisles (y).
pub const LANES: [f32; 4] = [2.0, 6.0, 10.0, 14.0];
pub const CROSS: [f32; 2] = [1.6, 10.4];

/// One product facing on a shelf row.
#[derive(Clone, Debug, Serialize)]
pub struct Facing {
    pub id: String,
    pub unit: usize,
    /// -1: west face (x - depth), +1: east face.
    pub side: i8,
    pub row: usize,
    pub col: usize,
    /// Centre of the facing's front edge.
    pub pos: V3,
    /// The SKU this facing is planned for.
    pub sku: usize,
    /// Items on it now, front last (a misplaced item can sit here).
    #[serde(skip)]
    pub items: Vec<usize>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Sku {
    pub id: String,
    pub name: String,
    pub grams: f32,
    #[serde(skip)]
    pub color: [u8; 3],
    #[serde(skip)]
    pub size: V3,
}

/// A hand-over of an item between companions (not a shelf event).
#[derive(Clone, Debug, Serialize)]
pub struct Handoff {
    pub t: f64,
    pub sku: String,
    pub from: u32,
    pub to: u32,
}

/// Hair colours: black, dark brown, brown, blond, grey.
const HAIR: [[u8; 3]; 5] = [[28, 24, 22], [55, 38, 28], [95, 62, 40], [190, 160, 105], [150, 148, 145]];

/// A human skin tone along the range from dark (0) to light (1), not a random RGB.
fn skin_tone(k: f32) -> [u8; 3] {
    let (dark, light) = ([88.0, 58.0, 42.0], [238.0, 198.0, 172.0]);
    let c = |i: usize| (dark[i] + (light[i] - dark[i]) * k) as u8;
    [c(0), c(1), c(2)]
}

/// What a shopper looks like.
#[derive(Clone, Debug)]
pub struct Look {
    pub height: f32,
    pub build: f32,
    pub shirt: [u8; 3],
    pub pants: [u8; 3],
    pub skin: [u8; 3],
    pub hair: [u8; 3],
    /// 0 solid, 1 horizontal stripes, 2 checks
    pub pattern: u8,
}

#[derive(Clone, Debug)]
enum Act {
    /// Waiting outside until the entry time.
    Outside,
    Walk {
        path: Vec<[f32; 2]>,
        seg: usize,
    },
    Reach {
        facing: usize,
        t0: f64,
        dur: f64,
        put: Option<usize>,
        hand: Hand,
    },
    Inspect {
        until: f64,
    },
    WaitFor {
        other: usize,
        until: f64,
    },
    Give {
        to: usize,
        t0: f64,
    },
    Gone,
}

#[derive(Clone, Debug)]
enum Goal {
    Visit(usize),
    MeetCompanion,
    Exit,
}

#[derive(Clone, Debug)]
pub struct Shopper {
    pub id: u32,
    pub session: String,
    pub look: Look,
    pub pos: [f32; 2],
    pub heading: f32,
    pub phase: f32,
    pub speed: f32,
    pub companion: Option<usize>,
    pub enter_at: f64,
    /// Items carried (SKU indices).
    pub carried: Vec<usize>,
    /// Item in hand while inspecting.
    pub holding: Option<usize>,
    pub hand: Hand,
    /// Reach progress 0..1 and target.
    pub reach: f32,
    pub reach_to: V3,
    goals: Vec<Goal>,
    act: Act,
    chase: u8,
    stall: f32,
    pub inside: bool,
}

impl Shopper {
    pub fn present(&self) -> bool {
        self.inside
    }
}

/// The whole world at one instant.
#[derive(Clone, Debug)]
pub struct World {
    pub t: f64,
    pub skus: Vec<Sku>,
    pub facings: Vec<Facing>,
    pub shoppers: Vec<Shopper>,
    pub events: Vec<Event>,
    pub handoffs: Vec<Handoff>,
    pub receipts: Vec<Receipt>,
    /// App scans at the gate, as the gate reports them.
    pub gate_scans: Vec<GateScan>,
    /// Facings whose stock changed since the last call to `take_dirty`.
    dirty: bool,
    rng: Rng,
}

fn color(rng: &mut Rng) -> [u8; 3] {
    let h = rng.f32() * 6.0;
    let s = rng.range(0.35, 0.9);
    let v = rng.range(0.35, 0.95);
    let c = v * s;
    let x = c * (1.0 - ((h % 2.0) - 1.0).abs());
    let (r, g, b) = match h as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let m = v - c;
    [((r + m) * 255.0) as u8, ((g + m) * 255.0) as u8, ((b + m) * 255.0) as u8]
}

const NAMES: [&str; 12] = [
    "cola",
    "crisps",
    "oat milk",
    "espresso beans",
    "granola",
    "sparkling water",
    "dark chocolate",
    "pasta",
    "tomato sauce",
    "olive oil",
    "rice",
    "tea",
];

impl World {
    pub fn new(seed: u64, n_shoppers: usize, seconds: f64) -> World {
        let mut rng = Rng::new(seed);
        let mut skus = Vec::new();
        let mut facings = Vec::new();
        let mut srng = rng.fork(1);
        for (u, &ux) in UNIT_X.iter().enumerate() {
            for side in [-1i8, 1] {
                for (row, &z) in ROW_Z.iter().enumerate() {
                    for col in 0..FACINGS_PER_ROW {
                        let k = skus.len();
                        let grams = srng.range(80.0, 1400.0);
                        let size = [srng.range(0.08, 0.14), srng.range(0.10, 0.22), srng.range(0.12, 0.28)];
                        skus.push(Sku {
                            id: format!("SKU-{:03}", k + 1),
                            name: format!("{} {}g", NAMES[k % NAMES.len()], grams.round()),
                            grams,
                            color: color(&mut srng),
                            size,
                        });
                        let y = SHELF_Y0 + (col as f32 + 0.5) * (SHELF_Y1 - SHELF_Y0) / FACINGS_PER_ROW as f32;
                        let x = ux + side as f32 * SHELF_HALF_DEPTH;
                        let stock = 3 + srng.below(4);
                        facings.push(Facing {
                            id: format!("U{}{}-R{}-C{}", u + 1, if side < 0 { 'W' } else { 'E' }, row + 1, col + 1),
                            unit: u,
                            side,
                            row,
                            col,
                            pos: [x, y, z],
                            sku: k,
                            items: vec![k; stock],
                        });
                    }
                }
            }
        }
        let mut shoppers = Vec::new();
        let mut prng = rng.fork(2);
        let span = (seconds * 0.45).max(1.0);
        let mut i = 0;
        while i < n_shoppers {
            let look = Look {
                height: prng.range(1.5, 1.95),
                build: prng.range(0.85, 1.2),
                shirt: color(&mut prng),
                pants: color(&mut prng),
                skin: skin_tone(prng.range(0.0, 1.0)),
                hair: HAIR[prng.below(HAIR.len())],
                pattern: prng.below(3) as u8,
            };
            let pair = i + 1 < n_shoppers && prng.chance(0.3);
            let enter = prng.range(0.0, span as f32) as f64;
            let n = if pair { 2 } else { 1 };
            for k in 0..n {
                let id = shoppers.len();
                // Look-alike cases: the companion, and every fifth shopper, copy a look.
                let look = if k == 1 || (id > 0 && id % 5 == 0) {
                    let mut l = shoppers.get(id.saturating_sub(1)).map(|s: &Shopper| s.look.clone()).unwrap_or(look.clone());
                    l.height += prng.range(-0.03, 0.03);
                    l
                } else {
                    look.clone()
                };
                let n_visits = 2 + prng.below(4);
                let mut goals: Vec<Goal> = (0..n_visits).map(|_| Goal::Visit(prng.below(facings.len()))).collect();
                if pair && k == 0 {
                    goals.push(Goal::MeetCompanion);
                }
                goals.push(Goal::Exit);
                shoppers.push(Shopper {
                    id: id as u32 + 1,
                    session: format!("sess-{seed}-{:03}", id + 1),
                    look,
                    pos: GATE,
                    heading: std::f32::consts::FRAC_PI_2,
                    phase: 0.0,
                    speed: prng.range(0.9, 1.4),
                    companion: if pair { Some(if k == 0 { id + 1 } else { id - 1 }) } else { None },
                    enter_at: enter + k as f64 * 1.5,
                    carried: Vec::new(),
                    holding: None,
                    hand: Hand::Right,
                    reach: 0.0,
                    reach_to: [0.0; 3],
                    goals,
                    act: Act::Outside,
                    chase: 0,
                    stall: 0.0,
                    inside: false,
                });
            }
            i += n;
        }
        World {
            t: 0.0,
            skus,
            facings,
            shoppers,
            events: Vec::new(),
            handoffs: Vec::new(),
            receipts: Vec::new(),
            gate_scans: Vec::new(),
            dirty: true,
            rng: rng.fork(3),
        }
    }

    /// Whether shelf stock changed since the last call.
    pub fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }

    /// Where a shopper stands to reach a facing.
    pub fn stand_spot(&self, f: usize) -> [f32; 2] {
        let fc = &self.facings[f];
        [fc.pos[0] + fc.side as f32 * 0.55, fc.pos[1]]
    }

    /// Advances the world by `dt` seconds.
    pub fn step(&mut self, dt: f64) {
        self.t += dt;
        for i in 0..self.shoppers.len() {
            self.step_shopper(i, dt);
        }
    }

    fn nearest_lane(x: f32) -> f32 {
        *LANES.iter().min_by(|a, b| (*a - x).abs().total_cmp(&(*b - x).abs())).unwrap_or(&LANES[0])
    }

    /// A smooth path along lanes and cross aisles from `a` to `b`.
    fn plan(&self, a: [f32; 2], b: [f32; 2], keep_right: f32) -> Vec<[f32; 2]> {
        let la = Self::nearest_lane(a[0]);
        let lb = Self::nearest_lane(b[0]);
        let mut pts = vec![a, [la, a[1]]];
        if (la - lb).abs() > 0.1 {
            let cy = *CROSS
                .iter()
                .min_by(|p, q| ((a[1] - **p).abs() + (b[1] - **p).abs()).total_cmp(&((a[1] - **q).abs() + (b[1] - **q).abs())))
                .unwrap_or(&CROSS[0]);
            pts.push([la, cy]);
            pts.push([lb, cy]);
        }
        pts.push([lb, b[1]]);
        pts.push(b);
        // keep to the right of the direction of travel: offset interior points
        let n = pts.len();
        for k in 1..n - 1 {
            let d = [pts[k + 1][0] - pts[k - 1][0], pts[k + 1][1] - pts[k - 1][1]];
            let l = (d[0] * d[0] + d[1] * d[1]).sqrt().max(1e-6);
            pts[k][0] += d[1] / l * keep_right;
            pts[k][1] -= d[0] / l * keep_right;
        }
        pts.dedup_by(|p, q| (p[0] - q[0]).abs() < 1e-3 && (p[1] - q[1]).abs() < 1e-3);
        // Chaikin smoothing for rounded corners
        for _ in 0..2 {
            let mut s = vec![pts[0]];
            for w in pts.windows(2) {
                let (p, q) = (w[0], w[1]);
                s.push([p[0] * 0.75 + q[0] * 0.25, p[1] * 0.75 + q[1] * 0.25]);
                s.push([p[0] * 0.25 + q[0] * 0.75, p[1] * 0.25 + q[1] * 0.75]);
            }
            s.push(*pts.last().unwrap_or(&b));
            pts = s;
        }
        pts
    }

    fn emit(&mut self, i: usize, kind: EventKind, sku: usize, facing: usize, hand: Hand) {
        let s = &self.shoppers[i];
        self.events.push(Event {
            t: (self.t * 1000.0).round() / 1000.0,
            kind,
            sku: self.skus[sku].id.clone(),
            facing: self.facings[facing].id.clone(),
            shopper: s.id,
            session: s.session.clone(),
            hand,
        });
        self.dirty = true;
    }

    fn next_goal(&mut self, i: usize) {
        let s = &self.shoppers[i];
        let Some(goal) = s.goals.first().cloned() else {
            self.shoppers[i].act = Act::Gone;
            return;
        };
        let keep_right = 0.35;
        let target = match goal {
            Goal::Visit(f) => self.stand_spot(f),
            Goal::Exit => EXIT,
            Goal::MeetCompanion => match s.companion {
                Some(c) if self.shoppers[c].inside => {
                    let p = self.shoppers[c].pos;
                    [p[0] - 0.7, p[1]]
                }
                _ => {
                    self.shoppers[i].goals.remove(0);
                    return self.next_goal(i);
                }
            },
        };
        let path = self.plan(s.pos, target, keep_right);
        self.shoppers[i].act = Act::Walk { path, seg: 0 };
    }

    fn step_shopper(&mut self, i: usize, dt: f64) {
        let t = self.t;
        let act = self.shoppers[i].act.clone();
        match act {
            Act::Gone => {}
            Act::Outside => {
                if t >= self.shoppers[i].enter_at {
                    self.shoppers[i].inside = true;
                    let session = self.shoppers[i].session.clone();
                    self.gate_scans.push(GateScan { t: (t * 1000.0).round() / 1000.0, lane: GATE_LANE.into(), session });
                    self.next_goal(i);
                }
            }
            Act::Walk { path, mut seg } => {
                let s = &self.shoppers[i];
                let mut speed = s.speed;
                // collision avoidance: slow down behind someone close ahead; in a head-on
                // or circular stand-off the lower id (or whoever waited too long) steps
                // aside to the right and goes on
                let blocks = |a: &Shopper, b: &Shopper| -> Option<f32> {
                    let fwd = [a.heading.cos(), a.heading.sin()];
                    let d = [b.pos[0] - a.pos[0], b.pos[1] - a.pos[1]];
                    let ahead = d[0] * fwd[0] + d[1] * fwd[1];
                    let side = (d[0] * fwd[1] - d[1] * fwd[0]).abs();
                    (ahead > 0.0 && ahead < 0.9 && side < 0.45).then_some(ahead)
                };
                let mut sidestep = false;
                for (j, o) in self.shoppers.iter().enumerate() {
                    if j == i || !o.inside {
                        continue;
                    }
                    if let Some(ahead) = blocks(s, o) {
                        let mutual = matches!(o.act, Act::Walk { .. }) && blocks(o, s).is_some();
                        if (mutual && s.id < o.id) || s.stall > 2.0 {
                            sidestep = true;
                        } else {
                            speed = speed.min(((ahead - 0.5) / 0.4).clamp(0.0, 1.0) * s.speed);
                        }
                    }
                }
                let mut left = speed * dt as f32;
                let mut pos = s.pos;
                if sidestep {
                    let right = [s.heading.sin(), -s.heading.cos()];
                    pos = [pos[0] + right[0] * 0.5 * dt as f32, pos[1] + right[1] * 0.5 * dt as f32];
                    left = s.speed * 0.6 * dt as f32;
                }
                let stalled = left < 0.05 * dt as f32;
                let mut heading = s.heading;
                while left > 0.0 && seg + 1 < path.len() {
                    let q = path[seg + 1];
                    let d = [q[0] - pos[0], q[1] - pos[1]];
                    let l = (d[0] * d[0] + d[1] * d[1]).sqrt();
                    if l > 1e-4 {
                        heading = d[1].atan2(d[0]);
                    }
                    if l <= left {
                        pos = q;
                        left -= l;
                        seg += 1;
                    } else {
                        pos = [pos[0] + d[0] / l * left, pos[1] + d[1] / l * left];
                        left = 0.0;
                    }
                }
                let moved = speed * dt as f32 - left;
                let sh = &mut self.shoppers[i];
                sh.stall = if stalled { sh.stall + dt as f32 } else { 0.0 };
                if sh.stall > 3.5 {
                    sh.stall = 0.0;
                }
                sh.pos = pos;
                sh.heading = heading;
                sh.phase += moved / (0.38 * sh.look.height) * std::f32::consts::PI;
                if seg + 1 >= path.len() {
                    self.arrive(i);
                } else {
                    self.shoppers[i].act = Act::Walk { path, seg };
                }
            }
            Act::Reach { facing, t0, dur, put, hand } => {
                let p = ((t - t0) / dur) as f32;
                // out and back: contact at the middle
                let s = &mut self.shoppers[i];
                s.reach = if p < 0.5 { p * 2.0 } else { (1.0 - p) * 2.0 }.clamp(0.0, 1.0);
                s.hand = hand;
                let contact = t - dt < t0 + dur / 2.0 && t >= t0 + dur / 2.0;
                if contact {
                    match put {
                        None => {
                            if let Some(item) = self.facings[facing].items.pop() {
                                self.shoppers[i].holding = Some(item);
                                self.emit(i, EventKind::Pickup, item, facing, hand);
                            }
                        }
                        Some(item) => {
                            self.facings[facing].items.push(item);
                            self.shoppers[i].holding = None;
                            self.emit(i, EventKind::Putback, item, facing, hand);
                        }
                    }
                }
                if p >= 1.0 {
                    self.shoppers[i].reach = 0.0;
                    if put.is_none() && self.shoppers[i].holding.is_some() {
                        let d = self.rng.range(1.0, 2.2) as f64;
                        self.shoppers[i].act = Act::Inspect { until: t + d };
                    } else {
                        self.shoppers[i].goals.remove(0);
                        self.next_goal(i);
                    }
                }
            }
            Act::Inspect { until } => {
                if t >= until {
                    let Goal::Visit(f) = self.shoppers[i].goals.first().cloned().unwrap_or(Goal::Exit) else {
                        return;
                    };
                    let item = self.shoppers[i].holding;
                    if self.rng.chance(0.3) {
                        // put it back; now and then on a neighbouring facing
                        let mut target = f;
                        if self.rng.chance(0.25) {
                            let fc = &self.facings[f];
                            if let Some(n) = self.facings.iter().position(|o| {
                                o.unit == fc.unit && o.side == fc.side && o.row == fc.row && (o.col as i32 - fc.col as i32).abs() == 1
                            }) {
                                target = n;
                            }
                        }
                        let hand = self.shoppers[i].hand;
                        self.start_reach(i, target, item, hand);
                    } else {
                        if let Some(it) = item {
                            self.shoppers[i].carried.push(it);
                        }
                        self.shoppers[i].holding = None;
                        self.shoppers[i].goals.remove(0);
                        self.next_goal(i);
                    }
                }
            }
            Act::WaitFor { other, until } => {
                let giver = matches!(self.shoppers[i].goals.first(), Some(Goal::MeetCompanion));
                if t >= until || !self.shoppers[other].inside {
                    if giver {
                        self.shoppers[i].goals.remove(0);
                    }
                    self.next_goal(i);
                } else if giver && matches!(self.shoppers[other].act, Act::Walk { .. }) {
                    self.arrive(i);
                }
            }
            Act::Give { to, t0 } => {
                let s = &mut self.shoppers[i];
                let p = ((t - t0) / 1.2) as f32;
                s.reach = if p < 0.5 { p * 2.0 } else { (1.0 - p) * 2.0 }.clamp(0.0, 1.0);
                let o = self.shoppers[to].pos;
                self.shoppers[i].reach_to = [o[0], o[1], self.shoppers[to].look.height * 0.6];
                if t - dt < t0 + 0.6 && t >= t0 + 0.6 {
                    if let Some(item) = self.shoppers[i].carried.pop() {
                        self.shoppers[to].carried.push(item);
                        self.handoffs.push(Handoff {
                            t: (t * 1000.0).round() / 1000.0,
                            sku: self.skus[item].id.clone(),
                            from: self.shoppers[i].id,
                            to: self.shoppers[to].id,
                        });
                    }
                }
                if p >= 1.0 {
                    self.shoppers[i].reach = 0.0;
                    self.shoppers[i].goals.remove(0);
                    self.next_goal(i);
                    // the companion carries on
                    if matches!(self.shoppers[to].act, Act::WaitFor { .. }) {
                        self.next_goal(to);
                    }
                }
            }
        }
    }

    fn start_reach(&mut self, i: usize, facing: usize, put: Option<usize>, hand: Hand) {
        let fc = &self.facings[facing];
        let s = &mut self.shoppers[i];
        let dx = fc.pos[0] - s.pos[0];
        let dy = fc.pos[1] - s.pos[1];
        s.heading = dy.atan2(dx);
        s.reach_to = [fc.pos[0] - fc.side as f32 * 0.05, fc.pos[1], fc.pos[2] + 0.08];
        let dur = self.rng.range(1.2, 1.8) as f64;
        s.act = Act::Reach { facing, t0: self.t, dur, put, hand };
    }

    fn arrive(&mut self, i: usize) {
        match self.shoppers[i].goals.first().cloned() {
            Some(Goal::Visit(f)) => {
                let heavy = self.skus[self.facings[f].items.last().copied().unwrap_or(self.facings[f].sku)].grams > 1100.0;
                let hand = if heavy {
                    Hand::Both
                } else if self.rng.chance(0.5) {
                    Hand::Left
                } else {
                    Hand::Right
                };
                if self.facings[f].items.is_empty() {
                    // sold out: move on
                    self.shoppers[i].goals.remove(0);
                    self.next_goal(i);
                } else {
                    self.start_reach(i, f, None, hand);
                }
            }
            Some(Goal::MeetCompanion) => {
                let to = self.shoppers[i].companion.unwrap_or(i);
                let ok = to != i && !self.shoppers[i].carried.is_empty() && self.shoppers[to].inside && self.shoppers[i].chase < 6;
                if !ok {
                    self.shoppers[i].goals.remove(0);
                    self.next_goal(i);
                    return;
                }
                let o = self.shoppers[to].pos;
                let p = self.shoppers[i].pos;
                let dist = ((o[0] - p[0]).powi(2) + (o[1] - p[1]).powi(2)).sqrt();
                if dist > 1.6 {
                    self.shoppers[i].chase += 1;
                    self.next_goal(i);
                } else if matches!(self.shoppers[to].act, Act::Walk { .. } | Act::WaitFor { .. }) {
                    let s = &mut self.shoppers[i];
                    s.heading = (o[1] - p[1]).atan2(o[0] - p[0]);
                    s.hand = Hand::Right;
                    s.act = Act::Give { to, t0: self.t };
                    let until = self.t + 3.0;
                    self.shoppers[to].act = Act::WaitFor { other: i, until };
                } else {
                    // the companion is busy at a shelf: wait a moment
                    let until = self.t + 4.0;
                    self.shoppers[i].chase += 1;
                    self.shoppers[i].act = Act::WaitFor { other: to, until };
                }
            }
            Some(Goal::Exit) | None => {
                let s = &mut self.shoppers[i];
                s.inside = false;
                s.act = Act::Gone;
                let mut items: Vec<String> = s.carried.iter().map(|&k| self.skus[k].id.clone()).collect();
                items.sort();
                self.receipts.push(Receipt { session: s.session.clone(), items });
            }
        }
    }

    /// Grams on each shelf (unit, side, row), as a load cell would read them.
    pub fn shelf_loads(&self) -> Vec<(String, f32)> {
        let mut out: Vec<(String, f32)> = Vec::new();
        for f in &self.facings {
            let key = format!("U{}{}-R{}", f.unit + 1, if f.side < 0 { 'W' } else { 'E' }, f.row + 1);
            let g: f32 = f.items.iter().map(|&k| self.skus[k].grams).sum();
            match out.iter_mut().find(|(k, _)| *k == key) {
                Some((_, v)) => *v += g,
                None => out.push((key, g)),
            }
        }
        out
    }
}
