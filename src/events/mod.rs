//! The store's domain records, shared by the live pipeline, the simulator and the scorer:
//! shelf interaction events, receipts and per-camera track rows. Everything here is plain
//! data with a stable JSON form (`events.jsonl`, `receipts.json`, `tracks.jsonl`).

use serde::{Deserialize, Serialize};

/// Which hand (or both) took part in an interaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Hand {
    Left,
    Right,
    Both,
}

/// What happened at a shelf.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    Pickup,
    Putback,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Pickup => "pickup",
            EventKind::Putback => "putback",
        }
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Compares with the JSON spelling (`"pickup"`, `"putback"`).
impl PartialEq<&str> for EventKind {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// A shelf interaction: who took or returned which item, where and when.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Event {
    /// Seconds since the start of the recording.
    pub t: f64,
    pub kind: EventKind,
    pub sku: String,
    pub facing: String,
    pub shopper: u32,
    pub session: String,
    pub hand: Hand,
}

/// What a session leaves the store with.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Receipt {
    pub session: String,
    pub items: Vec<String>,
}

/// An app scan at a gate lane: a session checks in (each companion of a group scans too).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct GateScan {
    /// Seconds since the start of the recording.
    pub t: f64,
    pub lane: String,
    pub session: String,
}

/// A shelf's load-cell reading: the weight on one shelf row.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ShelfReading {
    pub t: f64,
    pub shelf: String,
    pub grams: f32,
}

/// One person in one camera frame: a ground-truth row, or a tracker's output in the same form.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TrackRow {
    pub frame: u64,
    pub t: f64,
    pub cam: usize,
    pub id: u32,
    #[serde(default)]
    pub session: String,
    /// [x0, y0, x1, y1]: of the visible pixels in ground truth; of the whole person in a
    /// tracker's output (a pose model's box).
    pub bbox: [f32; 4],
    /// Ground truth: [x0, y0, x1, y1] of the whole body's projection (amodal), clipped to the
    /// image, as MOTChallenge's boxes are. Scoring matches predictions against it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_bbox: Option<[f32; 4]>,
    /// Ground truth: visible pixels over the pixels the unoccluded body would cover (parts out
    /// of the frame count as hidden), as MOTChallenge's visibility ratio.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visibility: Option<f32>,
    #[serde(default)]
    pub visible_px: u32,
    /// A detector's or tracker's confidence (predictions only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f32>,
    /// 17 x [u, v, v] with v: 2 visible, 1 in frame but occluded, 0 outside.
    #[serde(default)]
    pub keypoints: Vec<[f32; 3]>,
    /// Where the person stands on the floor (metres): the truth's foot point, or the
    /// pipeline's placement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub floor: Option<[f32; 2]>,
    /// A tracker's output: the camera's own track id (which per-camera tracklet the row
    /// belongs to), for `walkout eval`'s identity error budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub track: Option<u64>,
    /// A tracker's output: how fusion gave the row its global id at this step (kept, active,
    /// unseen, new, stray, merged: `perception::fusion::Link`), for tracing identity errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
}

impl TrackRow {
    /// The box scoring matches on: the full-body box where the row has one, else `bbox`.
    pub fn full_box(&self) -> [f32; 4] {
        self.full_bbox.unwrap_or(self.bbox)
    }

    /// The visibility ratio (1 when the row does not say).
    pub fn visibility(&self) -> f32 {
        self.visibility.unwrap_or(1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_json_keeps_its_spelling() {
        let e = Event {
            t: 1.5,
            kind: EventKind::Putback,
            sku: "SKU-001".into(),
            facing: "F-1".into(),
            shopper: 3,
            session: "s3".into(),
            hand: Hand::Both,
        };
        let j = serde_json::to_string(&e).expect("serialises");
        assert!(j.contains("\"kind\":\"putback\"") && j.contains("\"hand\":\"both\""), "{j}");
        assert_eq!(serde_json::from_str::<Event>(&j).expect("parses"), e);
        assert!(serde_json::from_str::<Event>(&j.replace("putback", "juggle")).is_err());
        assert!(e.kind == "putback");
    }
}
