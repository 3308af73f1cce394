//! Tracking and fusion cost per time step as the number of people grows: N people walk on a
//! 16 m x 10 m floor, 8 cameras each see every person within 6 m of them (box, 17 keypoints,
//! a 128-d embedding), and every step runs each camera's tracker and then fusion. Prints the
//! median over the steps, per N, as JSON lines.
//!
//! usage: cargo bench --bench tracking

use walkout::perception::{CameraTracker, Detection, Fusion, FusionConfig, Observation, TrackerConfig};

fn main() {
    let cams: Vec<[f32; 2]> = (0..8).map(|i| [2.0 + 4.0 * (i % 4) as f32, if i < 4 { 2.5 } else { 7.5 }]).collect();
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
        let mut times = Vec::new();
        for step in 0..200 {
            let t = step as f64 * 0.2;
            for p in &mut people {
                p.0 = [(p.0[0] + p.1[0] * 0.2).rem_euclid(16.0), (p.0[1] + p.1[1] * 0.2).rem_euclid(10.0)];
            }
            let start = std::time::Instant::now();
            let mut obs = Vec::new();
            for (ci, c) in cams.iter().enumerate() {
                let seen: Vec<&([f32; 2], [f32; 2], Vec<f32>)> =
                    people.iter().filter(|p| (p.0[0] - c[0]).hypot(p.0[1] - c[1]) < 6.0).collect();
                let dets: Vec<Detection> = seen
                    .iter()
                    .map(|p| {
                        let (u, v) = (320.0 + 40.0 * (p.0[0] - c[0]), 240.0 + 30.0 * (p.0[1] - c[1]));
                        Detection {
                            bbox: [u - 20.0, v - 80.0, u + 20.0, v],
                            score: 0.6,
                            keypoints: (0..17).map(|k| [u, v - 80.0 + 4.7 * k as f32, 0.8]).collect(),
                            embedding: Some(p.2.clone()),
                        }
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
                            keypoints: Vec::new(),
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
