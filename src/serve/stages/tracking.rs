//! The per-camera tracking stage: each camera's persons go through its own
//! `perception::CameraTracker`, and each result leaves with its persons' track ids.

use super::Stage;
use crate::models::heads::{HeadOutput, Person};
use crate::perception::{CameraTracker, Detection, TrackerConfig};
use crate::serve::result::{FrameResult, Identity};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Cameras silent for this long lose their tracker (removed or dead cameras).
const IDLE_CAMERA: Duration = Duration::from_secs(300);

/// Per camera: its tracker, the last capture time it saw and when.
#[derive(Debug, Default)]
pub struct TrackStage {
    config: TrackerConfig,
    cameras: HashMap<String, (CameraTracker, f64, Instant)>,
}

impl TrackStage {
    pub fn new(config: TrackerConfig) -> Self {
        TrackStage { config, cameras: HashMap::new() }
    }
}

/// Persons as tracker detections.
pub fn detections(persons: &[Person]) -> Vec<Detection> {
    persons
        .iter()
        .map(|p| Detection {
            bbox: p.bbox,
            score: p.score,
            keypoints: p.keypoints.iter().map(|k| [k.x, k.y, k.score]).collect(),
            embedding: None,
        })
        .collect()
}

/// A result's persons as tracker detections, with their ReID embeddings when it has them.
pub fn detections_of(r: &FrameResult) -> Vec<Detection> {
    let mut d = detections(r.persons());
    if r.embeddings.len() == d.len() {
        for (det, e) in d.iter_mut().zip(&r.embeddings) {
            det.embedding = Some(e.clone());
        }
    }
    d
}

impl Stage for TrackStage {
    fn name(&self) -> &'static str {
        "tracking"
    }

    fn on_frame(&mut self, r: Arc<FrameResult>, emit: &mut dyn FnMut(Arc<FrameResult>)) {
        let (t, now) = (r.capture_ts, Instant::now());
        self.cameras.retain(|_, (_, _, seen)| now.duration_since(*seen) <= IDLE_CAMERA);
        let (tracker, last, seen) =
            self.cameras.entry(r.camera.clone()).or_insert_with(|| (CameraTracker::new(self.config.clone()), t, now));
        if t + 1e-9 < *last {
            // the camera's clock went back (a looped file, a restarted stream): start over
            *tracker = CameraTracker::new(self.config.clone());
        }
        (*last, *seen) = (t, now);
        let ids = tracker.update(&detections_of(&r), t);
        let mut out = (*r).clone();
        // persons under the model's own threshold were decoded for the tracker: they stay
        // only where they continue a track
        let keep: Vec<bool> = r.persons().iter().zip(&ids).map(|(p, id)| p.score >= r.min_score || id.is_some()).collect();
        if keep.contains(&false) {
            if let HeadOutput::Poses(ps) = &mut out.output {
                let mut k = keep.iter();
                ps.retain(|_| k.next().copied().unwrap_or(true));
            }
            if out.embeddings.len() == keep.len() {
                let mut k = keep.iter();
                out.embeddings.retain(|_| k.next().copied().unwrap_or(true));
            }
        }
        out.identities =
            ids.into_iter().zip(&keep).filter(|(_, k)| **k).map(|(track, _)| Identity { track, ..Default::default() }).collect();
        emit(Arc::new(out));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::heads::Keypoint;

    fn frame(camera: &str, seq: u64, xs: &[f32]) -> Arc<FrameResult> {
        let persons = xs
            .iter()
            .map(|&x| Person {
                score: 0.9,
                bbox: [x, 100.0, x + 60.0, 260.0],
                keypoints: (0..17).map(|k| Keypoint { x: x + 30.0, y: 100.0 + 9.0 * k as f32, score: 0.9 }).collect(),
            })
            .collect();
        Arc::new(FrameResult::sample(camera, seq, persons))
    }

    #[test]
    fn each_camera_has_its_own_tracks() {
        let mut stage = TrackStage::default();
        let mut out = Vec::new();
        for seq in 0..5 {
            for cam in ["a", "b"] {
                stage.on_frame(frame(cam, seq, &[100.0 + 5.0 * seq as f32, 300.0]), &mut |r| out.push(r));
            }
        }
        let last_a = out.iter().rev().find(|r| r.camera == "a").expect("a result");
        let ids: Vec<Option<u64>> = last_a.identities.iter().map(|i| i.track).collect();
        assert_eq!(ids, vec![Some(1), Some(2)], "camera a numbers its own tracks");
        let last_b = out.iter().rev().find(|r| r.camera == "b").expect("b result");
        assert_eq!(last_b.identities.iter().map(|i| i.track).collect::<Vec<_>>(), vec![Some(1), Some(2)]);
        // a clock that goes back restarts that camera's tracks: numbering starts over
        stage.on_frame(frame("a", 0, &[400.0]), &mut |r| out.push(r));
        assert_eq!(out.last().map(|r| r.identities[0].track), Some(Some(1)));
    }

    /// Persons decoded under the model's `min_score` (for the tracker) are published only
    /// where they continue a track, with their embeddings kept in step.
    #[test]
    fn weak_persons_show_only_where_they_continue_a_track() {
        let mut stage = TrackStage::default();
        let weak = (stage.config.low_score + stage.config.high_score) / 2.0;
        let with_scores = |seq: u64, xs: &[f32], scores: &[f32]| {
            let mut r = (*frame("a", seq, xs)).clone();
            r.min_score = 0.25;
            if let HeadOutput::Poses(ps) = &mut r.output {
                for (p, s) in ps.iter_mut().zip(scores) {
                    p.score = *s;
                }
            }
            r.embeddings = xs.iter().map(|x| vec![*x]).collect();
            Arc::new(r)
        };
        let mut out = Vec::new();
        // a confident person at 100 and a weak one at 400 that continues nothing: dropped
        stage.on_frame(with_scores(0, &[100.0, 400.0], &[0.9, weak]), &mut |r| out.push(r));
        let r = out.last().expect("a result");
        assert_eq!(r.persons().len(), 1);
        assert_eq!(r.embeddings, vec![vec![100.0]]);
        assert_eq!(r.identities.iter().map(|i| i.track).collect::<Vec<_>>(), vec![Some(1)]);
        // the first person, now half hidden and scored low, keeps its track and is shown
        stage.on_frame(with_scores(1, &[104.0], &[weak]), &mut |r| out.push(r));
        let r = out.last().expect("a result");
        assert_eq!(r.persons().len(), 1);
        assert_eq!(r.identities.iter().map(|i| i.track).collect::<Vec<_>>(), vec![Some(1)]);
    }
}
