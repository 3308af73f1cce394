//! The store's floor zones: gate lanes and the exit, from its floor plan.

/// A floor polygon (metres).
#[derive(Clone, Debug, PartialEq)]
pub struct Zone {
    pub id: String,
    pub polygon: Vec<[f32; 2]>,
}

impl Zone {
    /// Even-odd point in polygon.
    pub fn contains(&self, p: [f32; 2]) -> bool {
        let n = self.polygon.len();
        let mut inside = false;
        for i in 0..n {
            let (a, b) = (self.polygon[i], self.polygon[(i + n - 1) % n]);
            if (a[1] > p[1]) != (b[1] > p[1]) && p[0] < (b[0] - a[0]) * (p[1] - a[1]) / (b[1] - a[1]) + a[0] {
                inside = !inside;
            }
        }
        inside
    }
}

/// The gate lanes and the exit zone of a store's floor plan (`store/floorplan.json`:
/// `gate_lanes: [{id, polygon}]`, `exit_zone: {polygon}`).
pub fn zones_from_floorplan(plan: &serde_json::Value) -> (Vec<Zone>, Option<Zone>) {
    let zone = |z: &serde_json::Value, id: &str| -> Option<Zone> {
        let polygon: Vec<[f32; 2]> = serde_json::from_value(z.get("polygon")?.clone()).ok()?;
        (polygon.len() >= 3).then(|| Zone { id: z.get("id").and_then(|v| v.as_str()).unwrap_or(id).to_string(), polygon })
    };
    let gates = plan["gate_lanes"].as_array().into_iter().flatten().filter_map(|z| zone(z, "")).collect();
    (gates, zone(&plan["exit_zone"], "exit"))
}
