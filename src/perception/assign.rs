//! Minimum-cost assignment and box IoU.

/// Minimum-cost assignment on a rectangular cost matrix (rows of equal length): the
/// Jonker-Volgenant solver of the `lsap` crate, a port of SciPy's `linear_sum_assignment`
/// (so ties resolve as in TrackEval). Returns (row, col) pairs sorted by row, one per row
/// when rows <= cols and one per column otherwise. Costs must be finite; non-finite costs
/// (which SciPy rejects too) give no pairs.
pub fn assign(cost: &[Vec<f64>]) -> Vec<(usize, usize)> {
    let n = cost.len();
    let m = cost.first().map_or(0, |r| r.len());
    if n == 0 || m == 0 {
        return Vec::new();
    }
    debug_assert!(cost.iter().all(|r| r.len() == m), "ragged cost matrix (a bug in the caller)");
    let flat: Vec<f64> = cost.iter().flat_map(|r| r.iter().copied()).collect();
    match lsap::solve(n, m, &flat, false) {
        Ok((rows, cols)) => {
            let mut out: Vec<(usize, usize)> = rows.into_iter().zip(cols).collect();
            out.sort_unstable();
            out
        }
        Err(_) => Vec::new(),
    }
}

/// Intersection over union of two `[x0, y0, x1, y1]` boxes, computed in f64 from the f32
/// corners (so it equals TrackEval's IoU on the same boxes written out exactly).
pub fn iou(a: &[f32; 4], b: &[f32; 4]) -> f64 {
    let [a0, a1, a2, a3] = a.map(f64::from);
    let [b0, b1, b2, b3] = b.map(f64::from);
    let ix = (a2.min(b2) - a0.max(b0)).max(0.0);
    let iy = (a3.min(b3) - a1.max(b1)).max(0.0);
    let inter = ix * iy;
    let ua = (a2 - a0) * (a3 - a1) + (b2 - b0) * (b3 - b1) - inter;
    if ua <= 0.0 || inter <= 0.0 {
        0.0
    } else {
        inter / ua
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Brute force over all injective maps of the smaller side.
    fn best(cost: &[Vec<f64>]) -> f64 {
        fn go(cost: &[Vec<f64>], i: usize, used: &mut Vec<bool>) -> f64 {
            if i == cost.len() {
                return 0.0;
            }
            let mut b = f64::INFINITY;
            for j in 0..used.len() {
                if !used[j] {
                    used[j] = true;
                    b = b.min(cost[i][j] + go(cost, i + 1, used));
                    used[j] = false;
                }
            }
            b
        }
        go(cost, 0, &mut vec![false; cost[0].len()])
    }

    #[test]
    fn assignment_is_optimal_on_small_matrices() {
        let mut s = 7u64;
        for (n, m) in [(1, 1), (2, 3), (3, 3), (4, 6), (5, 5)] {
            let cost: Vec<Vec<f64>> = (0..n)
                .map(|_| {
                    (0..m)
                        .map(|_| {
                            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                            ((s >> 33) % 100) as f64
                        })
                        .collect()
                })
                .collect();
            let pairs = assign(&cost);
            assert_eq!(pairs.len(), n);
            let total: f64 = pairs.iter().map(|&(i, j)| cost[i][j]).sum();
            assert_eq!(total, best(&cost), "{n}x{m}");
            // tall matrices: one pair per column
            let t: Vec<Vec<f64>> = (0..m).map(|j| (0..n).map(|i| cost[i][j]).collect()).collect();
            let tp = assign(&t);
            assert_eq!(tp.len(), n);
            assert_eq!(tp.iter().map(|&(i, j)| t[i][j]).sum::<f64>(), total);
        }
        assert!(assign(&[]).is_empty());
    }

    #[test]
    fn iou_of_boxes() {
        assert_eq!(iou(&[0., 0., 2., 2.], &[0., 0., 2., 2.]), 1.0);
        assert!((iou(&[0., 0., 2., 2.], &[1., 0., 3., 2.]) - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(iou(&[0., 0., 1., 1.], &[2., 2., 3., 3.]), 0.0);
    }
}
