//! Calibrated pinhole cameras: intrinsics, extrinsics, projection, back-projected rays and
//! the floor homography. The live pipeline and the simulator share this one camera model.

use super::vec3::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CamKind {
    Ceiling,
    Shelf,
}

/// A camera. World to camera: `p_c = R (p_w - C)`; camera looks along +z, y down.
#[derive(Clone, Debug, Serialize)]
pub struct Camera {
    pub id: usize,
    pub kind: CamKind,
    pub width: usize,
    pub height: usize,
    pub fps: f64,
    pub fx: f32,
    pub fy: f32,
    pub cx: f32,
    pub cy: f32,
    /// Rows of the world-to-camera rotation.
    pub r: [V3; 3],
    /// Camera centre in world metres.
    pub center: V3,
}

pub const NEAR: f32 = 0.05;

/// A 3x4 projection matrix (world to homogeneous pixels).
pub type Projection = [[f64; 4]; 3];

/// Resolution and frame rate of a camera.
#[derive(Clone, Copy, Debug)]
pub struct Sensor {
    pub width: usize,
    pub height: usize,
    pub fps: f64,
}

impl Camera {
    /// A camera at `eye` looking at `target`.
    pub fn look_at(id: usize, kind: CamKind, eye: V3, target: V3, hfov_deg: f32, sensor: Sensor) -> Camera {
        let Sensor { width, height, fps } = sensor;
        let z = normalize(sub(target, eye));
        let up = if z[2].abs() > 0.99 { [0.0, 1.0, 0.0] } else { [0.0, 0.0, 1.0] };
        // image x to the right, y down
        let x = normalize(cross(z, up));
        let y = cross(z, x);
        let fx = (width as f32 / 2.0) / (hfov_deg.to_radians() / 2.0).tan();
        Camera { id, kind, width, height, fps, fx, fy: fx, cx: width as f32 / 2.0, cy: height as f32 / 2.0, r: [x, y, z], center: eye }
    }

    #[inline]
    pub fn to_cam(&self, p: V3) -> V3 {
        let d = sub(p, self.center);
        [dot(self.r[0], d), dot(self.r[1], d), dot(self.r[2], d)]
    }

    /// Pixel (u, v) and depth of a world point; `None` behind the camera.
    #[inline]
    pub fn project(&self, p: V3) -> Option<(f32, f32, f32)> {
        let c = self.to_cam(p);
        if c[2] <= NEAR {
            return None;
        }
        Some((self.fx * c[0] / c[2] + self.cx, self.fy * c[1] / c[2] + self.cy, c[2]))
    }

    /// Direction (world) of the ray through pixel centre (u, v).
    #[inline]
    pub fn ray(&self, u: f32, v: f32) -> V3 {
        let dc = [(u - self.cx) / self.fx, (v - self.cy) / self.fy, 1.0];
        // R^T dc
        add(add(scale(self.r[0], dc[0]), scale(self.r[1], dc[1])), scale(self.r[2], dc[2]))
    }

    /// 3x3 homography from floor coordinates (x, y, 1) to homogeneous pixels.
    pub fn floor_homography(&self) -> [[f32; 3]; 3] {
        // K [r1 r2 t] with t = -R C
        let t = [-dot(self.r[0], self.center), -dot(self.r[1], self.center), -dot(self.r[2], self.center)];
        let col = |k: usize| [self.r[0][k], self.r[1][k], self.r[2][k]];
        let (c1, c2) = (col(0), col(1));
        let k = [[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]];
        let m = [[c1[0], c2[0], t[0]], [c1[1], c2[1], t[1]], [c1[2], c2[2], t[2]]];
        let mut h = [[0.0f32; 3]; 3];
        for i in 0..3 {
            for j in 0..3 {
                h[i][j] = (0..3).map(|q| k[i][q] * m[q][j]).sum();
            }
        }
        h
    }

    /// Calibration record written next to the footage.
    pub fn calibration(&self) -> serde_json::Value {
        let t = [-dot(self.r[0], self.center), -dot(self.r[1], self.center), -dot(self.r[2], self.center)];
        serde_json::json!({
            "id": self.id,
            "kind": self.kind,
            "width": self.width,
            "height": self.height,
            "fps": self.fps,
            "K": [[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]],
            "R": self.r,
            "t": t,
            "center": self.center,
            "floor_homography": self.floor_homography(),
            "convention": "x_cam = R (x_world - center) = R x_world + t; pixel = K x_cam / z; floor_homography maps (x, y, 1) on z = 0 to pixels",
        })
    }

    /// Where the ray through pixel (u, v) meets the floor (z = 0), in floor metres; `None`
    /// when the ray does not go down.
    pub fn floor_point(&self, u: f32, v: f32) -> Option<[f32; 2]> {
        self.point_at_height(u, v, 0.0)
    }

    /// Where the ray through pixel (u, v) meets the horizontal plane at height `z`, as a
    /// floor position; `None` when the ray does not reach it in front of the camera.
    pub fn point_at_height(&self, u: f32, v: f32, z: f32) -> Option<[f32; 2]> {
        let d = self.ray(u, v);
        let s = (z - self.center[2]) / d[2];
        if d[2].abs() < 1e-6 || s <= 0.0 {
            return None;
        }
        Some([self.center[0] + s * d[0], self.center[1] + s * d[1]])
    }

    /// The 3x4 projection matrix K [R | t].
    pub fn projection(&self) -> Projection {
        let t = [-dot(self.r[0], self.center), -dot(self.r[1], self.center), -dot(self.r[2], self.center)];
        let k = [[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]];
        let mut p = [[0.0f64; 4]; 3];
        for (i, row) in p.iter_mut().enumerate() {
            for (j, v) in row.iter_mut().enumerate() {
                *v = (0..3).map(|q| k[i][q] as f64 * if j < 3 { self.r[q][j] as f64 } else { t[q] as f64 }).sum();
            }
        }
        p
    }

    /// Reads a `calibration.json` as `calibration()` writes it.
    pub fn from_calibration(v: &serde_json::Value) -> Result<Camera, String> {
        #[derive(Deserialize)]
        struct Cal {
            id: usize,
            kind: CamKind,
            width: usize,
            height: usize,
            fps: f64,
            #[serde(rename = "K")]
            k: [[f32; 3]; 3],
            #[serde(rename = "R")]
            r: [V3; 3],
            center: V3,
        }
        let c: Cal = serde_json::from_value(v.clone()).map_err(|e| format!("calibration: {e}"))?;
        Ok(Camera {
            id: c.id,
            kind: c.kind,
            width: c.width,
            height: c.height,
            fps: c.fps,
            fx: c.k[0][0],
            fy: c.k[1][1],
            cx: c.k[0][2],
            cy: c.k[1][2],
            r: c.r,
            center: c.center,
        })
    }
}

/// Linear (DLT) triangulation of one point seen in two or more views: each view gives its
/// projection matrix, the pixel and a weight (a keypoint's confidence). Solves the weighted
/// homogeneous least squares through the 4x4 normal matrix's smallest eigenvector (Jacobi).
pub fn triangulate(views: &[(Projection, [f32; 2], f32)]) -> Option<V3> {
    if views.len() < 2 {
        return None;
    }
    // A^T A, each view adding rows u P3 - P1 and v P3 - P2
    let mut m = [[0.0f64; 4]; 4];
    for (p, uv, w) in views {
        let w = (*w as f64).max(0.0);
        for (coord, row) in [(uv[0] as f64, 0), (uv[1] as f64, 1)] {
            let a: Vec<f64> = (0..4).map(|j| coord * p[2][j] - p[row][j]).collect();
            for i in 0..4 {
                for j in 0..4 {
                    m[i][j] += w * a[i] * a[j];
                }
            }
        }
    }
    let x = smallest_eigenvector(m);
    (x[3].abs() > 1e-12).then(|| [(x[0] / x[3]) as f32, (x[1] / x[3]) as f32, (x[2] / x[3]) as f32])
}

/// Weighted linear triangulation with the point's fourth coordinate fixed at 1 (a person is
/// never at infinity): the 3x3 normal equations of the DLT rows `u P3 - P1`, `v P3 - P2`,
/// solved in closed form. Same estimate as `triangulate` for finite points, without its
/// eigen-solver (`perception::pose3d` runs it hundreds of times per person and step).
pub fn triangulate_finite<'a>(views: impl Iterator<Item = (&'a Projection, [f32; 2], f32)>) -> Option<V3> {
    let (mut m, mut r) = ([[0.0f64; 3]; 3], [0.0f64; 3]);
    for (p, uv, w) in views {
        let w = (w as f64).max(0.0);
        for (coord, row) in [(uv[0] as f64, 0), (uv[1] as f64, 1)] {
            let a: [f64; 4] = std::array::from_fn(|k| coord * p[2][k] - p[row][k]);
            for i in 0..3 {
                for k in 0..3 {
                    m[i][k] += w * a[i] * a[k];
                }
                r[i] -= w * a[i] * a[3];
            }
        }
    }
    let det = |m: &[[f64; 3]; 3]| {
        m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
            + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
    };
    let d = det(&m);
    let scale = m.iter().flatten().map(|v| v.abs()).fold(0.0, f64::max).powi(3);
    if d.abs() <= 1e-12 * scale.max(1e-300) {
        return None;
    }
    // Cramer's rule
    let x: [f64; 3] = std::array::from_fn(|c| {
        let mut mc = m;
        for (row, rv) in mc.iter_mut().zip(r) {
            row[c] = rv;
        }
        det(&mc) / d
    });
    Some([x[0] as f32, x[1] as f32, x[2] as f32])
}

/// The eigenvector of a symmetric 4x4 matrix with the smallest eigenvalue (cyclic Jacobi).
fn smallest_eigenvector(mut a: [[f64; 4]; 4]) -> [f64; 4] {
    let mut v = [[0.0f64; 4]; 4];
    for (i, row) in v.iter_mut().enumerate() {
        row[i] = 1.0;
    }
    for _ in 0..64 {
        let off: f64 = (0..4).flat_map(|i| (0..4).filter(move |&j| j != i).map(move |j| (i, j))).map(|(i, j)| a[i][j] * a[i][j]).sum();
        if off < 1e-24 {
            break;
        }
        for p in 0..4 {
            for q in p + 1..4 {
                if a[p][q].abs() < 1e-300 {
                    continue;
                }
                let theta = (a[q][q] - a[p][p]) / (2.0 * a[p][q]);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let (c, s) = (1.0 / (t * t + 1.0).sqrt(), t / (t * t + 1.0).sqrt());
                for row in a.iter_mut() {
                    let (akp, akq) = (row[p], row[q]);
                    row[p] = c * akp - s * akq;
                    row[q] = s * akp + c * akq;
                }
                let (rp, rq) = (a[p], a[q]);
                for k in 0..4 {
                    a[p][k] = c * rp[k] - s * rq[k];
                    a[q][k] = s * rp[k] + c * rq[k];
                }
                for row in v.iter_mut() {
                    let (vp, vq) = (row[p], row[q]);
                    row[p] = c * vp - s * vq;
                    row[q] = s * vp + c * vq;
                }
            }
        }
    }
    let k = (0..4).min_by(|&i, &j| a[i][i].total_cmp(&a[j][j])).unwrap_or(3);
    [v[0][k], v[1][k], v[2][k], v[3][k]]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cams() -> Vec<Camera> {
        let s = Sensor { width: 640, height: 480, fps: 10.0 };
        vec![
            Camera::look_at(0, CamKind::Ceiling, [2.0, 2.0, 3.4], [2.0, 4.0, 0.0], 95.0, s),
            Camera::look_at(1, CamKind::Shelf, [5.0, 6.0, 2.0], [2.0, 4.5, 0.8], 80.0, s),
            Camera::look_at(2, CamKind::Ceiling, [1.0, 7.0, 3.4], [2.5, 4.0, 0.0], 95.0, s),
        ]
    }

    #[test]
    fn floor_points_invert_the_projection() {
        for c in cams() {
            let p = [2.2, 4.3, 0.0];
            let (u, v, _) = c.project(p).expect("in front");
            let f = c.floor_point(u, v).expect("looks down");
            assert!((f[0] - p[0]).abs() < 1e-3 && (f[1] - p[1]).abs() < 1e-3, "{f:?}");
            // the calibration record reads back as the same camera
            let back = Camera::from_calibration(&c.calibration()).expect("reads");
            assert_eq!(back.project(p), c.project(p));
        }
    }

    #[test]
    fn dlt_recovers_a_point_from_noisy_views() {
        let cs = cams();
        let x = [2.1, 4.4, 1.3];
        let views: Vec<_> = cs
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let (u, v, _) = c.project(x).expect("visible");
                (c.projection(), [u + 0.5 * i as f32 - 0.5, v - 0.3], 0.9)
            })
            .collect();
        let got = triangulate(&views).expect("two views or more");
        let err = norm(sub(got, x));
        assert!(err < 0.02, "{got:?} vs {x:?}: {err} m");
        assert!(triangulate(&views[..1]).is_none());
    }

    /// The closed-form DLT agrees with the eigenvector one on noisy views.
    #[test]
    fn closed_form_dlt_matches_the_eigen_dlt() {
        let p = [3.2, 2.9, 1.1];
        let views: Vec<(Projection, [f32; 2], f32)> = cams()
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let (u, v, _) = c.project(p).unwrap();
                (c.projection(), [u + 1.5 * i as f32, v - 1.0], 0.5 + 0.2 * i as f32)
            })
            .collect();
        let a = triangulate(&views).unwrap();
        let b = triangulate_finite(views.iter().map(|(p, uv, w)| (p, *uv, *w))).unwrap();
        // the two minimise slightly different algebraic errors; both land within millimetres
        for k in 0..3 {
            assert!((a[k] - b[k]).abs() < 0.005 && (b[k] - p[k]).abs() < 0.05, "{a:?} {b:?} {p:?}");
        }
    }
}
