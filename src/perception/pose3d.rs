//! A person's joints in 3-D from the cameras that see them at one time step: each COCO-17
//! joint seen with enough confidence in two or more views is triangulated by
//! confidence-weighted DLT over the views that agree: every pair
//! of views proposes a point, the one most views reproject close to wins, and those views
//! (its inliers) give the joint; a view that disagrees (a mislabelled limb, a wrong
//! cross-camera association) is left out. A joint below the floor or above any shopper's
//! reach is dropped (PoseTrack's cheap mis-association check).

use crate::geometry::camera::{Camera, Projection};
use crate::geometry::{triangulate_finite, V3};

/// Least keypoint confidence for a view to take part in a joint.
pub const MIN_SCORE: f32 = 0.3;
/// A view whose keypoint is further than this from the joint's reprojection (pixels) is
/// dropped for that joint.
pub const MAX_REPROJ_PX: f32 = 20.0;
/// Heights (metres) a joint may have.
pub const Z_RANGE: [f32; 2] = [-0.15, 2.4];

/// One joint in the store's frame: `[x, y, z, confidence]` (the mean confidence of the views
/// it came from), or `None` where fewer than two views agreed.
pub type Joint3 = Option<[f32; 4]>;

/// A view index, its keypoint's pixel and confidence.
type Seen = (usize, [f32; 2], f32);

/// One camera's view of a person: its calibration and the person's COCO-17 keypoints
/// (`[x, y, score]` in that camera's pixels).
#[derive(Clone, Copy, Debug)]
pub struct View<'a> {
    pub camera: &'a Camera,
    pub keypoints: &'a [[f32; 3]],
}

/// Views per joint at most (the most confident ones).
pub const MAX_VIEWS: usize = 5;

/// The person's 17 joints (empty when fewer than two views).
pub fn triangulate_person(views: &[View]) -> Vec<Joint3> {
    if views.len() < 2 {
        return Vec::new();
    }
    let proj: Vec<Projection> = views.iter().map(|v| v.camera.projection()).collect();
    let joints = views.iter().map(|v| v.keypoints.len()).min().unwrap_or(0);
    (0..joints)
        .map(|j| {
            let mut seen: Vec<(usize, [f32; 2], f32)> = views
                .iter()
                .enumerate()
                .filter(|(_, v)| v.keypoints[j][2] >= MIN_SCORE)
                .map(|(i, v)| (i, [v.keypoints[j][0], v.keypoints[j][1]], v.keypoints[j][2]))
                .collect();
            if seen.len() < 2 {
                return None;
            }
            // the most confident views only: pairs grow as the square of views
            seen.sort_by(|a, b| b.2.total_cmp(&a.2));
            seen.truncate(MAX_VIEWS);
            let tri =
                |set: &[(usize, [f32; 2], f32)]| -> Option<V3> { triangulate_finite(set.iter().map(|&(i, uv, w)| (&proj[i], uv, w))) };
            let reproj = |p: V3, i: usize, uv: [f32; 2]| match views[i].camera.project(p) {
                Some((u, v, _)) => ((u - uv[0]).powi(2) + (v - uv[1]).powi(2)).sqrt(),
                None => f32::INFINITY,
            };
            // RANSAC over view pairs (a handful of views: try them all): the pair whose point
            // the most views agree with, then DLT over those views
            let mut best: Option<(usize, f32, Vec<Seen>)> = None;
            for a in 0..seen.len() {
                for b in a + 1..seen.len() {
                    let Some(p) = tri(&[seen[a], seen[b]]) else { continue };
                    let errs: Vec<f32> = seen.iter().map(|&(i, uv, _)| reproj(p, i, uv)).collect();
                    let inliers: Vec<_> = seen.iter().zip(&errs).filter(|(_, &e)| e <= MAX_REPROJ_PX).map(|(s, _)| *s).collect();
                    let total: f32 = errs.iter().filter(|&&e| e <= MAX_REPROJ_PX).sum();
                    let better = match &best {
                        None => true,
                        Some((n, t, _)) => inliers.len() > *n || (inliers.len() == *n && total < *t),
                    };
                    if inliers.len() >= 2 && better {
                        best = Some((inliers.len(), total, inliers));
                    }
                }
            }
            let (_, _, mut inliers) = best?;
            let mut p = tri(&inliers)?;
            // refit until every view left agrees with the point
            loop {
                let kept: Vec<_> = inliers.iter().copied().filter(|&(i, uv, _)| reproj(p, i, uv) <= MAX_REPROJ_PX).collect();
                if kept.len() == inliers.len() || kept.len() < 2 {
                    break;
                }
                inliers = kept;
                p = tri(&inliers)?;
            }
            if p[2] < Z_RANGE[0] || p[2] > Z_RANGE[1] {
                return None;
            }
            let conf = inliers.iter().map(|s| s.2).sum::<f32>() / inliers.len() as f32;
            Some([p[0], p[1], p[2], conf])
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::camera::{CamKind, Sensor};

    fn cams() -> Vec<Camera> {
        let s = Sensor { width: 640, height: 480, fps: 5.0 };
        vec![
            Camera::look_at(0, CamKind::Ceiling, [0.0, 0.0, 3.2], [3.0, 3.0, 0.0], 95.0, s),
            Camera::look_at(1, CamKind::Ceiling, [6.0, 0.0, 3.2], [3.0, 3.0, 0.0], 95.0, s),
            Camera::look_at(2, CamKind::Shelf, [3.0, 6.0, 2.0], [3.0, 3.0, 1.0], 80.0, s),
        ]
    }

    fn seen_by(c: &Camera, pts: &[[f32; 3]]) -> Vec<[f32; 3]> {
        pts.iter()
            .map(|&p| match c.project(p) {
                Some((u, v, _)) => [u, v, 0.9],
                None => [0.0, 0.0, 0.0],
            })
            .collect()
    }

    #[test]
    fn joints_come_back_from_two_or_more_views_and_a_wrong_view_is_outvoted() {
        let truth: Vec<[f32; 3]> = (0..17).map(|j| [3.0 + 0.02 * j as f32, 3.1, 0.1 * j as f32]).collect();
        let cams = cams();
        let mut kps: Vec<Vec<[f32; 3]>> = cams.iter().map(|c| seen_by(c, &truth)).collect();
        // camera 2 mistakes the left wrist (9) for the right one, half a metre away
        let off = cams[2].project([3.7, 3.1, 0.9]).unwrap();
        kps[2][9] = [off.0, off.1, 0.9];
        // joint 0 only one camera sees confidently
        kps[1][0][2] = 0.1;
        kps[2][0][2] = 0.1;
        let views: Vec<View> = cams.iter().zip(&kps).map(|(c, k)| View { camera: c, keypoints: k }).collect();
        let got = triangulate_person(&views);
        assert_eq!(got.len(), 17);
        assert!(got[0].is_none(), "one view cannot place a joint");
        for (j, g) in got.iter().enumerate().skip(1) {
            let g = g.unwrap_or_else(|| panic!("joint {j} missing"));
            let e = ((g[0] - truth[j][0]).powi(2) + (g[1] - truth[j][1]).powi(2) + (g[2] - truth[j][2]).powi(2)).sqrt();
            assert!(e < 0.01, "joint {j} off by {e} m");
        }
        assert!(triangulate_person(&views[..1]).is_empty());
    }
}
