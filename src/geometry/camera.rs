//! Calibrated pinhole cameras: intrinsics, extrinsics, projection, back-projected rays and
//! the floor homography. The live pipeline and the simulator share this one camera model.

use super::vec3::*;
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
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
}
