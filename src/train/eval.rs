//! Re-identification scores as Market-1501 reports them: every crop queries the others; a
//! gallery crop of the same identity seen by the same camera is left out (it would be the
//! same sighting a frame later); rank-1 is the share of queries whose nearest crop is their
//! identity, mAP the mean of each query's average precision.

use super::data::CropSet;

/// (rank-1, mAP) of L2-normalised embeddings; queries with no true match elsewhere are
/// skipped.
pub fn rank1_map(emb: &[Vec<f32>], labels: &[u32], cams: &[u32]) -> (f64, f64) {
    let n = emb.len();
    let (mut r1, mut ap_sum, mut queries) = (0usize, 0f64, 0usize);
    for q in 0..n {
        let mut scored: Vec<(f32, bool)> = (0..n)
            .filter(|&g| g != q && !(labels[g] == labels[q] && cams[g] == cams[q]))
            .map(|g| (emb[q].iter().zip(&emb[g]).map(|(a, b)| a * b).sum::<f32>(), labels[g] == labels[q]))
            .collect();
        let positives = scored.iter().filter(|s| s.1).count();
        if positives == 0 {
            continue;
        }
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        queries += 1;
        r1 += scored[0].1 as usize;
        let (mut hits, mut ap) = (0usize, 0f64);
        for (rank, s) in scored.iter().enumerate() {
            if s.1 {
                hits += 1;
                ap += hits as f64 / (rank + 1) as f64;
            }
        }
        ap_sum += ap / positives as f64;
    }
    if queries == 0 {
        return (0.0, 0.0);
    }
    (r1 as f64 / queries as f64, ap_sum / queries as f64)
}

/// The classic appearance baseline: RGB colour histograms (4x4x4 bins) of a crop's upper and
/// lower halves, Hellinger-mapped and L2-normalised (128-d).
pub fn colour_histograms(set: &CropSet) -> Vec<Vec<f32>> {
    let (h, w) = (set.height, set.width);
    (0..set.len())
        .map(|i| {
            let px = set.crop(i);
            let mut hist = vec![0f32; 128];
            for y in 0..h {
                let half = if y < h / 2 { 0 } else { 64 };
                for x in 0..w {
                    let p = &px[(y * w + x) * 3..(y * w + x) * 3 + 3];
                    let bin = (p[0] as usize / 64) * 16 + (p[1] as usize / 64) * 4 + p[2] as usize / 64;
                    hist[half + bin] += 1.0;
                }
            }
            let mut v: Vec<f32> = hist.into_iter().map(f32::sqrt).collect();
            let n = v.iter().map(|a| a * a).sum::<f32>().sqrt().max(1e-12);
            v.iter_mut().for_each(|a| *a /= n);
            v
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rank1_and_map_on_a_hand_made_gallery() {
        // two identities, two cameras; identity 0's second sighting is nearer identity 1
        let emb = vec![vec![1.0, 0.0], vec![0.8, 0.6], vec![0.0, 1.0], vec![0.6, 0.8]];
        let labels = vec![0, 0, 1, 1];
        let cams = vec![0, 1, 0, 1];
        let (r1, map) = rank1_map(&emb, &labels, &cams);
        // query 0: [1 (id0, 0.8), 3 (0.6)] -> hit; query 1: [3 (0.96), 0 (0.8)] -> miss, AP 1/2
        // query 2: [3 (0.8), 1 (0.6)] -> hit; query 3: [1 (0.96), 2 (0.8)] -> miss, AP 1/2
        assert!((r1 - 0.5).abs() < 1e-9, "{r1}");
        assert!((map - 0.75).abs() < 1e-9, "{map}");
    }
}
