//! Tracking and fusion cost per time step as the number of people grows: N people walk on a
//! 16 m x 10 m floor, 8 calibrated ceiling cameras each see every person within 6 m of them
//! (box, 17 keypoints projected from a standing body, a 128-d embedding), and every step runs
//! each camera's tracker and then fusion, 3-D joints included. Prints the median over the
//! steps, per N, as JSON lines.
//!
//! usage: cargo bench --bench tracking

use walkout::geometry::{CamKind, Camera, Sensor};
use walkout::perception::{CameraTracker, Detection, Fusion, FusionConfig, Observation, TrackerConfig};

/// COCO-17 heights (metres) of a standing person, and a side offset for left/right joints.
const Z: [f32; 17] = [1.6, 1.63, 1.63, 1.6, 1.6, 1.42, 1.42, 1.15, 1.15, 0.9, 0.9, 0.9, 0.9, 0.48, 0.48, 0.08, 0.08];

fn main() {
    let cams: Vec<[f32; 2]> = (0..8).map(|i| [2.0 + 4.0 * (i % 4) as f32, if i < 4 { 2.5 } else { 7.5 }]).collect();
    let sensor = Sensor { width: 640, height: 480, fps: 5.0 };
    let calib: Vec<Camera> = cams
        .iter()
        .enumerate()
        .map(|(i, c)| Camera::look_at(i, CamKind::Ceiling, [c[0], c[1] - 2.0, 3.2], [c[0], c[1] + 1.0, 0.0], 95.0, sensor))
        .collect();
    for n in [4usize, 8, 16, 32, 64] {
        let mut seed = 12345u64;
        let mut rnd = || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 33) as f32 / (1u64 << 31) as f32
        };
        let mut people: Vec<([f32; 2], [f32; 2], Vec<f32>)> = (0..n)
            .map(|_| {
                let e: Vec<f32> = (0..128).map(|_| rnd() - 0.5).collect();
                let norm = e.iter().map(|v| v * v).sum::<f32>().sqrt();
                ([rnd() * 16.0, rnd() * 10.0], [rnd() - 0.5, rnd() - 0.5], e.into_iter().map(|v| v / norm).collect())
            })
            .collect();
        let mut trackers: Vec<CameraTracker> = cams.iter().map(|_| CameraTracker::new(TrackerConfig::default())).collect();
        let mut fusion = Fusion::new(FusionConfig::default(), Vec::new(), None);
        for (i, c) in calib.iter().enumerate() {
            fusion.set_camera(i, c.clone());
        }
        let mut times = Vec::new();
        for step in 0..200 {
            let t = step as f64 * 0.2;
            for p in &mut people {
                p.0 = [(p.0[0] + p.1[0] * 0.2).rem_euclid(16.0), (p.0[1] + p.1[1] * 0.2).rem_euclid(10.0)];
            }
            let start = std::time::Instant::now();
            let mut obs = Vec::new();
            for (ci, c) in cams.iter().enumerate() {
                let seen: Vec<&([f32; 2], [f32; 2], Vec<f32>)> = people
                    .iter()
                    .filter(|p| (p.0[0] - c[0]).hypot(p.0[1] - c[1]) < 6.0)
                    .filter(|p| Z.iter().all(|&z| calib[ci].project([p.0[0], p.0[1], z]).is_some()))
                    .collect();
                let dets: Vec<Detection> = seen
                    .iter()
                    .filter_map(|p| {
                        let kp: Vec<[f32; 3]> = (0..17)
                            .map(|k| {
                                let side = if k % 2 == 1 { 0.18 } else { -0.18 };
                                let (u, v, _) = calib[ci].project([p.0[0] + side * (k > 4) as i32 as f32, p.0[1], Z[k]])?;
                                Some([u, v, 0.8])
                            })
                            .collect::<Option<_>>()?;
                        let (x0, x1) = kp.iter().fold((f32::MAX, f32::MIN), |a, k| (a.0.min(k[0]), a.1.max(k[0])));
                        let (y0, y1) = kp.iter().fold((f32::MAX, f32::MIN), |a, k| (a.0.min(k[1]), a.1.max(k[1])));
                        Some(Detection { bbox: [x0, y0, x1, y1], score: 0.6, keypoints: kp, embedding: Some(p.2.clone()) })
                    })
                    .collect();
                let ids = trackers[ci].update(&dets, t);
                for (i, id) in ids.into_iter().enumerate() {
                    if let Some(track) = id {
                        obs.push(Observation {
                            cam: ci,
                            track,
                            floor: seen[i].0,
                            embedding: seen[i].2.clone().into(),
                            keypoints: dets[i].keypoints.clone(),
                        });
                    }
                }
            }
            fusion.update(t, &obs);
            times.push(start.elapsed().as_secs_f64() * 1e3);
        }
        times.sort_by(|a, b| a.total_cmp(b));
        println!(
            "{{\"people\": {n}, \"cameras\": 8, \"ms_per_step_median\": {:.4}, \"ms_per_step_p90\": {:.4}}}",
            times[times.len() / 2],
            times[times.len() * 9 / 10]
        );
    }
}
