//! Geometry shared by the live pipeline and the simulator: vector math and the calibrated
//! camera model (projection, rays, floor homography).

pub mod camera;
pub mod vec3;

pub use camera::{triangulate, triangulate_finite, CamKind, Camera, Projection, Sensor};
pub use vec3::V3;
