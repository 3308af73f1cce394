//! Fusion's unit tests: cameras to global tracks, sessions at the gate, the closed world,
//! privacy at the exit.

use super::*;

fn gate() -> Zone {
    Zone { id: "gate-1".into(), polygon: vec![[0.0, 0.0], [2.0, 0.0], [2.0, 1.0], [0.0, 1.0]] }
}

#[test]
fn two_cameras_see_one_person_as_one_global_track_with_a_session() {
    let exit = Zone { id: "exit".into(), polygon: vec![[8.0, 0.0], [10.0, 0.0], [10.0, 1.0], [8.0, 1.0]] };
    let mut f = Fusion::new(FusionConfig::default(), vec![gate()], Some(exit));
    f.scan(GateScan { t: 0.2, lane: "gate-1".into(), session: "s1".into() });
    let mut ids = Vec::new();
    for k in 0..100 {
        let t = k as f64 * 0.1;
        // walks from the gate to the exit along y = 0.5, then up
        let x = 1.0 + 0.08 * k as f32;
        let p = [x, 0.5];
        let obs = vec![
            Observation { cam: 0, track: 7, floor: [p[0] + 0.05, p[1]], embedding: None, keypoints: Vec::new() },
            Observation { cam: 1, track: 3, floor: [p[0] - 0.05, p[1] + 0.04], embedding: None, keypoints: Vec::new() },
        ];
        let out = f.update(t, &obs);
        ids.push(out);
    }
    assert!(ids.iter().all(|o| o[0] == o[1] && o[0] == ids[0][0]), "{:?}", &ids[..3]);
    assert_eq!(f.session_of(ids[0][0]), Some("s1"));
    assert_eq!(f.ended, vec![("s1".to_string(), ids[0][0])]);
}

#[test]
fn companions_each_bind_their_own_scan_and_far_people_stay_apart() {
    let mut f = Fusion::new(FusionConfig::default(), vec![gate()], None);
    // c came in ten seconds ago, unseen since: whoever turns up where c could be by now is c
    f.scan(GateScan { t: -10.0, lane: "gate-1".into(), session: "c".into() });
    f.scan(GateScan { t: 0.0, lane: "gate-1".into(), session: "a".into() });
    f.scan(GateScan { t: 1.5, lane: "gate-1".into(), session: "b".into() });
    let mut last = Vec::new();
    for k in 0..40 {
        let t = k as f64 * 0.1;
        let mut obs = vec![Observation { cam: 0, track: 1, floor: [1.0, 0.5 + 0.05 * k as f32], embedding: None, keypoints: Vec::new() }];
        if t >= 1.5 {
            obs.push(Observation { cam: 0, track: 2, floor: [1.2, 0.5 + 0.05 * (k - 15) as f32], embedding: None, keypoints: Vec::new() });
        }
        // someone far away in another aisle
        obs.push(Observation { cam: 1, track: 9, floor: [6.0, 5.0], embedding: None, keypoints: Vec::new() });
        last = f.update(t, &obs);
    }
    assert_eq!(last.len(), 3);
    assert!(last[0] != last[1] && last[1] != last[2] && last[0] != last[2], "{last:?}");
    assert_eq!(f.session_of(last[0]), Some("a"));
    assert_eq!(f.session_of(last[1]), Some("b"));
    assert_eq!(f.session_of(last[2]), Some("c"));
}

/// The closed world: with every scan bound, a sighting mid-store that no one's floor
/// track explains is someone already inside, the one whom no camera sees now.
#[test]
fn a_stray_mid_store_is_someone_already_inside() {
    let mut f = Fusion::new(FusionConfig::default(), vec![gate()], None);
    f.scan(GateScan { t: 0.0, lane: "gate-1".into(), session: "a".into() });
    f.scan(GateScan { t: 0.5, lane: "gate-1".into(), session: "b".into() });
    let obs = |track: u64, cam: usize, floor: [f32; 2]| Observation { cam, track, floor, embedding: None, keypoints: Vec::new() };
    // a and b come in one after the other
    f.update(0.0, &[obs(1, 0, [1.0, 0.5])]);
    let ab = f.update(0.5, &[obs(1, 0, [1.0, 0.9]), obs(2, 0, [1.5, 0.5])]);
    assert_eq!((f.session_of(ab[0]), f.session_of(ab[1])), (Some("a"), Some("b")));
    // both walk off out of sight; twenty seconds later a camera sees a at the back of the
    // store while another sees someone 8 m away whom no floor track explains: b
    let later = f.update(20.0, &[obs(5, 1, [14.0, 10.0]), obs(6, 2, [6.0, 10.0])]);
    assert!(later.iter().all(|&g| g != 0), "{later:?}");
    assert_ne!(later[0], later[1]);
    assert_eq!(f.tracks().len(), 2, "no one new: {:?}", f.tracks());
}

/// Privacy: a shopper's appearance lives only as long as their session; at the exit it is
/// dropped, and the track goes once out of sight.
#[test]
fn embeddings_are_dropped_when_the_session_ends() {
    let exit = Zone { id: "exit".into(), polygon: vec![[4.0, 0.0], [6.0, 0.0], [6.0, 1.0], [4.0, 1.0]] };
    let mut f = Fusion::new(FusionConfig::default(), vec![gate()], Some(exit));
    f.scan(GateScan { t: 0.0, lane: "gate-1".into(), session: "s".into() });
    let look = Some(vec![0.6, 0.8]);
    let mut t = 0.0;
    for k in 0..60 {
        t = k as f64 * 0.1;
        let obs =
            vec![Observation { cam: 0, track: 1, floor: [1.0 + 0.08 * k as f32, 0.5], embedding: look.clone(), keypoints: Vec::new() }];
        f.update(t, &obs);
        let g = &f.tracks()[0];
        if g.exited.is_none() {
            assert!(g.embedding.is_some(), "a live session keeps its appearance at step {k}");
            assert!(g.gallery.is_some(), "and its gallery at step {k}");
        }
    }
    assert_eq!(f.ended.len(), 1, "walked out through the exit");
    assert!(f.tracks().iter().all(|g| g.embedding.is_none() && g.gallery.is_none()), "the appearance went with the session");
    // out of sight past the linger: the track itself is gone
    f.update(t + f.config.exit_linger_s + 0.5, &[]);
    assert!(f.tracks().is_empty());
}

#[test]
fn points_in_zones() {
    assert!(gate().contains([1.0, 0.5]) && !gate().contains([2.5, 0.5]));
}

/// Two ceiling cameras, 5 m apart, looking at the floor point (4, 4).
fn two_ceiling_cameras() -> [Camera; 2] {
    use crate::geometry::camera::{CamKind, Sensor};
    let s = Sensor { width: 640, height: 480, fps: 5.0 };
    [
        Camera::look_at(0, CamKind::Ceiling, [3.0, 0.0, 3.2], [4.0, 4.0, 0.0], 95.0, s),
        Camera::look_at(1, CamKind::Ceiling, [8.0, 0.0, 3.2], [4.0, 4.0, 0.0], 95.0, s),
    ]
}

/// A person's 17 joints in 3-D, standing at (x, 4).
fn body(x: f32) -> Vec<[f32; 3]> {
    (0..17).map(|j| [x + 0.01 * j as f32, 4.0, 1.7 - 0.1 * j as f32]).collect()
}

/// A body's keypoints as a camera sees them (score 0.9; behind the camera: zeros).
fn seen(c: &Camera, pts: &[[f32; 3]]) -> Vec<[f32; 3]> {
    pts.iter().map(|&p| c.project(p).map(|(u, v, _)| [u, v, 0.9]).unwrap_or([0.0, 0.0, 0.0])).collect()
}

/// Two calibrated cameras that see one person give that global track its joints in 3-D,
/// and the keypoint rays then place a later sighting without the floor point's help.
#[test]
fn two_calibrated_views_lift_joints_to_3d() {
    let cams = two_ceiling_cameras();
    let mut f = Fusion::new(FusionConfig::default(), Vec::new(), None);
    for (n, c) in cams.iter().enumerate() {
        f.set_camera(n, c.clone());
    }
    let obs = |x: f32, floor_err: f32| -> Vec<Observation> {
        (0..2)
            .map(|n| Observation {
                cam: n,
                track: 1,
                floor: [x + floor_err * n as f32, 4.0],
                embedding: None,
                keypoints: seen(&cams[n], &body(x)),
            })
            .collect()
    };
    let ids = f.update(0.0, &obs(4.0, 0.0));
    assert_eq!(ids[0], ids[1]);
    let g = &f.tracks()[0];
    assert_eq!(g.joints_t, 0.0);
    for (j, p) in body(4.0).iter().enumerate() {
        let q = g.joints[j].unwrap_or_else(|| panic!("joint {j}"));
        assert!((q[0] - p[0]).abs() < 0.01 && (q[1] - p[1]).abs() < 0.01 && (q[2] - p[2]).abs() < 0.01, "joint {j}: {q:?} vs {p:?}");
    }
    // a new tracklet in camera 1 whose floor point is 1.5 m off (beyond max_dist_m) still
    // joins the person its keypoint rays pass through
    let mut later = obs(4.1, 1.5);
    later[1].track = 2;
    let ids = f.update(0.2, &later);
    assert_eq!(ids[0], ids[1], "{ids:?}");
    assert_eq!(f.tracks().len(), 1);
}

/// A new camera's sighting between two companions waits for `hold_s` before it takes either
/// one's identity; one plainly beside one of them takes it at once.
#[test]
fn an_ambiguous_sighting_waits_before_it_links() {
    let mut f = Fusion::new(FusionConfig { hold_margin: 0.3, hold_s: 1.0, ..FusionConfig::default() }, vec![], None);
    let obs = |track: u64, cam: usize, floor: [f32; 2]| Observation { cam, track, floor, embedding: None, keypoints: Vec::new() };
    // a and b stand 0.6 m apart, seen by camera 0
    let ab = f.update(0.0, &[obs(1, 0, [3.0, 3.0]), obs(2, 0, [3.6, 3.0])]);
    assert!(ab[0] != 0 && ab[1] != 0 && ab[0] != ab[1]);
    let mut waited = 0;
    for k in 1..=10 {
        let t = k as f64 * 0.2;
        // camera 1 sees someone just between them, and someone right beside a
        let out = f.update(t, &[obs(1, 0, [3.0, 3.0]), obs(2, 0, [3.6, 3.0]), obs(5, 1, [3.3, 3.05]), obs(6, 2, [3.02, 3.0])]);
        assert_eq!(&out[..2], &ab[..], "step {k}");
        assert_eq!(out[3], ab[0], "the plain one links at once (step {k})");
        if out[2] == 0 {
            waited += 1;
        } else {
            assert!(out[2] == ab[0] || out[2] == ab[1]);
        }
    }
    // it waited from t = 0.2 for a second (five steps), then linked
    assert_eq!(waited, 5);
}

/// Two people walk side by side; after their galleries fill, the camera's tracker swaps
/// their tracklets (and so, with the links kept, their global ids). Their looks against
/// their galleries swap the identities back within a few steps; look-alikes never swap.
#[test]
fn swapped_identities_are_swapped_back_by_their_galleries() {
    for (b_look, swaps_back) in [([0.8, 0.6, 0.0], true), ([1.0, 0.0, 0.0], false)] {
        // links kept as a rule (`keep_bonus` 0): here the floor points alone would undo the
        // swap (a_camera_trackers_swap_is_undone_by_the_3d_joints); the galleries are for
        // swaps that geometry cannot tell
        let mut f = Fusion::new(FusionConfig { keep_bonus: 0.0, ..FusionConfig::default() }, Vec::new(), None);
        let a_look = [1.0f32, 0.0, 0.0];
        let mut first: Option<(u64, u64)> = None;
        let mut after = Vec::new();
        for k in 0..50 {
            let t = k as f64 * 0.2;
            let x = 1.0 + 0.2 * k as f32;
            let (pa, pb) = ([x, 2.0], [x, 3.2]);
            // from step 20 on, tracklet 1 follows b and tracklet 2 follows a
            let (t1, t2) = if k < 20 { ((pa, a_look), (pb, b_look)) } else { ((pb, b_look), (pa, a_look)) };
            let obs = vec![
                Observation { cam: 0, track: 1, floor: t1.0, embedding: Some(t1.1.to_vec()), keypoints: Vec::new() },
                Observation { cam: 0, track: 2, floor: t2.0, embedding: Some(t2.1.to_vec()), keypoints: Vec::new() },
            ];
            let out = f.update(t, &obs);
            if k == 19 {
                first = Some((out[0], out[1]));
            }
            if k >= 20 {
                // (the id on a's sighting, the id on b's)
                after.push((out[1], out[0]));
            }
        }
        let (a, b) = first.expect("ids before the swap");
        assert_ne!(a, b);
        if swaps_back {
            assert_eq!(after[0], (b, a), "the tracker's swap carries the ids at first");
            // cosine 0.8 between them: 0.4 of evidence a step, past 1.5 after seven steps
            assert!(after[10..].iter().all(|&ids| ids == (a, b)), "{after:?}");
            assert!(f.swaps >= 1);
        } else {
            assert_eq!(f.swaps, 0, "look-alikes give no evidence");
        }
    }
}

/// Step 7: one person whom two cameras first placed apart is one global track once they
/// agree; two companions side by side, each seen by one camera and each with their own
/// session, never merge (each shopper scans their own).
#[test]
fn duplicates_merge_but_companions_with_their_own_sessions_do_not() {
    let run = |scans: &[(&str, f64)], second: [f32; 2]| {
        let mut f = Fusion::new(FusionConfig::default(), vec![gate()], None);
        for (s, t) in scans {
            f.scan(GateScan { t: *t, lane: "gate-1".into(), session: s.to_string() });
        }
        let mut last = Vec::new();
        for k in 0..40 {
            let t = k as f64 * 0.1;
            let y = 0.5 + 0.05 * k as f32;
            // the second camera's point starts `second` away, then settles 0.4 m to the side
            let off = if k < 5 { second } else { [0.4, 0.0] };
            let obs = vec![
                Observation { cam: 0, track: 1, floor: [0.2, y], embedding: None, keypoints: Vec::new() },
                Observation { cam: 1, track: 1, floor: [0.2 + off[0], y + off[1]], embedding: None, keypoints: Vec::new() },
            ];
            last = f.update(t, &obs);
        }
        last
    };
    // one scan: the second camera's first sighting, 1.6 m off, started a second track in the lane,
    // and it merges once both cameras agree
    let one = run(&[("a", 0.0)], [1.6, 0.0]);
    assert_eq!(one[0], one[1], "{one:?}");
    // companions: two scans, two sessions, side by side
    let two = run(&[("a", 0.0), ("b", 0.0)], [1.6, 0.0]);
    assert_ne!(two[0], two[1], "{two:?}");
}

/// Two people 1.2 m apart, seen by two calibrated cameras; then camera 1's tracker swaps
/// their tracklets. With the link a prior (`keep_bonus`), the keypoint rays against each
/// person's 3-D joints undo the swap the same step; with the link a rule (0), both stay
/// on the wrong person while within `relink_m`.
#[test]
fn a_camera_trackers_swap_is_undone_by_the_3d_joints() {
    let cams = two_ceiling_cameras();
    let run = |keep_bonus: f64| -> Vec<Vec<u64>> {
        let mut f = Fusion::new(FusionConfig { keep_bonus, ..FusionConfig::default() }, Vec::new(), None);
        for (n, c) in cams.iter().enumerate() {
            f.set_camera(n, c.clone());
        }
        (0..6)
            .map(|k| {
                let swapped = k >= 3;
                // each camera's tracklets 1 and 2 show a (x = 3.4) and b (x = 4.6), until
                // camera 1's tracker swaps them
                let obs: Vec<Observation> = (0..2)
                    .flat_map(|n| {
                        [(1u64, 3.4f32), (2, 4.6)].map(|(track, x)| {
                            let x = if n == 1 && swapped { 8.0 - x } else { x };
                            Observation { cam: n, track, floor: [x, 4.0], embedding: None, keypoints: seen(&cams[n], &body(x)) }
                        })
                    })
                    .collect();
                f.update(k as f64 * 0.2, &obs)
            })
            .collect()
    };
    let soft = run(0.2);
    let (a, b) = (soft[0][0], soft[0][1]);
    assert!(a != 0 && b != 0 && a != b && soft[0][2..] == [a, b], "{:?}", soft[0]);
    for (k, ids) in soft.iter().enumerate() {
        let cam1 = if k >= 3 { [b, a] } else { [a, b] };
        assert_eq!(ids, &[a, b, cam1[0], cam1[1]], "step {k}: each person keeps their id in both cameras");
    }
    let rule = run(0.0);
    assert_eq!(&rule[4][2..], &[rule[0][0], rule[0][1]], "the rule keeps the swapped links: {rule:?}");
}
