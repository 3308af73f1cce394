//! The constant-velocity Kalman filter of ByteTrack and DeepSORT (`KalmanFilterXYAH`): a box as
//! centre x, centre y, aspect (width / height) and height, each with a velocity. Its motion
//! and measurement matrices are block-diagonal per coordinate and its noises diagonal, so the
//! 8-state filter is exactly four independent (position, velocity) filters; they are written
//! that way here. Noise scales with the box height as in ByteTrack (`std_weight_position`
//! 1/20, `std_weight_velocity` 1/160 per frame); time is in seconds, with ByteTrack's
//! per-frame noise taken at a nominal 10 frames per second.

const W_POS: f64 = 1.0 / 20.0;
const W_VEL: f64 = 1.0 / 160.0;
/// Frames per second at which ByteTrack's per-frame noises apply.
const NOMINAL_FPS: f64 = 10.0;

/// One coordinate: position, velocity (per second) and their covariance.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Axis {
    p: f64,
    v: f64,
    /// [var(p), cov(p, v), var(v)]
    c: [f64; 3],
}

impl Axis {
    fn new(p: f64, std_p: f64, std_v: f64) -> Axis {
        Axis { p, v: 0.0, c: [std_p * std_p, 0.0, std_v * std_v] }
    }

    /// x' = F x, P' = F P F^T + Q with F = [[1, dt], [0, 1]].
    fn predict(&mut self, dt: f64, q_p: f64, q_v: f64) {
        let [p00, p01, p11] = self.c;
        self.p += self.v * dt;
        self.c = [p00 + 2.0 * dt * p01 + dt * dt * p11 + q_p, p01 + dt * p11, p11 + q_v];
    }

    /// Measurement of the position with variance `r`.
    fn update(&mut self, z: f64, r: f64) {
        let [p00, p01, p11] = self.c;
        let s = p00 + r;
        let (k0, k1) = (p00 / s, p01 / s);
        let y = z - self.p;
        self.p += k0 * y;
        self.v += k1 * y;
        self.c = [(1.0 - k0) * p00, (1.0 - k0) * p01, p11 - k1 * p01];
    }
}

/// A box's motion state.
#[derive(Clone, Debug, PartialEq)]
pub struct BoxFilter {
    /// cx, cy, aspect, height
    axes: [Axis; 4],
}

fn xyah(b: &[f32; 4]) -> [f64; 4] {
    let (w, h) = ((b[2] - b[0]) as f64, ((b[3] - b[1]) as f64).max(1e-3));
    [(b[0] + b[2]) as f64 / 2.0, (b[1] + b[3]) as f64 / 2.0, w / h, h]
}

impl BoxFilter {
    /// A filter started at a measured box, at rest.
    pub fn new(b: &[f32; 4]) -> BoxFilter {
        let m = xyah(b);
        let h = m[3];
        let (sp, sv) = (2.0 * W_POS * h, 10.0 * W_VEL * h * NOMINAL_FPS);
        BoxFilter {
            axes: [Axis::new(m[0], sp, sv), Axis::new(m[1], sp, sv), Axis::new(m[2], 1e-2, 1e-5 * NOMINAL_FPS), Axis::new(h, sp, sv)],
        }
    }

    /// Moves the state `dt` seconds ahead.
    pub fn predict(&mut self, dt: f64) {
        let dt = dt.max(0.0);
        let steps = dt * NOMINAL_FPS;
        let h = self.axes[3].p.max(1.0);
        let (qp, qv) = ((W_POS * h).powi(2) * steps, (W_VEL * h * NOMINAL_FPS).powi(2) * steps);
        for (k, a) in self.axes.iter_mut().enumerate() {
            if k == 2 {
                a.predict(dt, 1e-4 * steps, (1e-5 * NOMINAL_FPS).powi(2) * steps);
            } else {
                a.predict(dt, qp, qv);
            }
        }
    }

    /// Corrects the state with a measured box.
    pub fn update(&mut self, b: &[f32; 4]) {
        let m = xyah(b);
        let r = (W_POS * self.axes[3].p.max(1.0)).powi(2);
        for (k, (a, z)) in self.axes.iter_mut().zip(m).enumerate() {
            a.update(z, if k == 2 { 1e-2 } else { r });
        }
    }

    /// The state as a box [x0, y0, x1, y1].
    pub fn bbox(&self) -> [f32; 4] {
        let [cx, cy, a, h] = self.axes.map(|a| a.p);
        let w = a * h;
        [(cx - w / 2.0) as f32, (cy - h / 2.0) as f32, (cx + w / 2.0) as f32, (cy + h / 2.0) as f32]
    }

    /// Centre velocity in pixels per second.
    pub fn velocity(&self) -> [f64; 2] {
        [self.axes[0].v, self.axes[1].v]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_box_moving_steadily_is_followed_and_extrapolated() {
        let at = |t: f64| [(100.0 + 50.0 * t) as f32, 80.0, (140.0 + 50.0 * t) as f32, 180.0];
        let mut f = BoxFilter::new(&at(0.0));
        for k in 1..=20 {
            f.predict(0.1);
            f.update(&at(k as f64 * 0.1));
        }
        let v = f.velocity();
        assert!((v[0] - 50.0).abs() < 2.0 && v[1].abs() < 1.0, "velocity {v:?}");
        // half a second without measurements: the prediction keeps moving
        f.predict(0.5);
        let (b, want) = (f.bbox(), at(2.5));
        for k in 0..4 {
            assert!((b[k] - want[k]).abs() < 2.0, "{b:?} vs {want:?}");
        }
    }

    #[test]
    fn one_axis_matches_the_8_state_filter_algebra() {
        // a hand-computed step: P = diag(4, 1), dt = 1, Q = (1, 1), R = 2
        let mut a = Axis { p: 0.0, v: 1.0, c: [4.0, 0.0, 1.0] };
        a.predict(1.0, 1.0, 1.0);
        assert_eq!((a.p, a.c), (1.0, [6.0, 1.0, 2.0]));
        a.update(3.0, 2.0);
        // S = 8, K = (0.75, 0.125), y = 2
        assert_eq!((a.p, a.v), (2.5, 1.25));
        assert_eq!(a.c, [1.5, 0.25, 1.875]);
    }
}
