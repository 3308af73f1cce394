//! What the store's operator knows, as `walkout sim` writes it under `store/`: the floor plan
//! (gate lanes, exit zone, shelf units, walking lanes), the planogram (facings with their 3-D
//! boxes and planned SKU) and the SKU catalogue. Floor coordinates are metres, x along the
//! store's width, y along its depth, z up, as the cameras' calibration.

use super::world::*;
use serde_json::{json, Value};

/// An axis-aligned rectangle on the floor as a polygon.
fn rect(x0: f32, y0: f32, x1: f32, y1: f32) -> Value {
    json!([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
}

/// `store/floorplan.json`.
pub fn floor_plan() -> Value {
    let units: Vec<Value> = UNIT_X
        .iter()
        .enumerate()
        .map(|(u, &x)| {
            json!({
                "id": format!("U{}", u + 1),
                "min": [x - SHELF_HALF_DEPTH, SHELF_Y0, 0.0],
                "max": [x + SHELF_HALF_DEPTH, SHELF_Y1, SHELF_HEIGHT],
                "shelf_rows_z": ROW_Z,
            })
        })
        .collect();
    json!({
        "width": WIDTH,
        "depth": DEPTH,
        "gate_lanes": [{"id": GATE_LANE, "polygon": rect(GATE[0] - 0.6, 0.0, GATE[0] + 0.6, GATE[1] + 0.6)}],
        "exit_zone": {"polygon": rect(EXIT[0] - 0.6, 0.0, EXIT[0] + 0.6, EXIT[1] + 0.6)},
        "shelf_units": units,
        "walking_lanes_x": LANES,
        "cross_aisles_y": CROSS,
    })
}

/// `store/planogram.json`: every facing with its 3-D box (front edge on the shelf face, one
/// facing wide, up to the next row) and the SKU planned there.
pub fn planogram(world: &World) -> Value {
    let width = (SHELF_Y1 - SHELF_Y0) / FACINGS_PER_ROW as f32;
    let facings: Vec<Value> = world
        .facings
        .iter()
        .map(|f| {
            let [x, y, z] = f.pos;
            let back = x - f.side as f32 * SHELF_HALF_DEPTH;
            let top = ROW_Z.get(f.row + 1).copied().unwrap_or(SHELF_HEIGHT);
            json!({
                "id": f.id,
                "shelf": format!("U{}{}-R{}", f.unit + 1, if f.side < 0 { 'W' } else { 'E' }, f.row + 1),
                "sku": world.skus[f.sku].id,
                "front_center": f.pos,
                "min": [x.min(back), y - width / 2.0, z],
                "max": [x.max(back), y + width / 2.0, top],
            })
        })
        .collect();
    json!({ "facings": facings })
}

/// `store/skus.json`: the catalogue.
pub fn catalogue(world: &World) -> Value {
    Value::Array(world.skus.iter().map(|s| json!({"id": s.id, "name": s.name, "grams": s.grams})).collect())
}
