//! Identity consolidation across steps: two global tracks that are one person merge, and
//! two that wear each other's identities swap them back (module docs of `fusion`, steps 7
//! and 8).

use super::{dist, Fusion, FusionMode, Link, Observation};
use crate::perception::{cosine, unit};

impl Fusion {
    /// Galleries grow from each track's first sightings; then two global tracks seen now
    /// whose looks match each other's galleries better than their own, for long enough,
    /// swap identities (id, session, gallery): a swap between companions, undone.
    pub(super) fn swap(&mut self, t: f64, obs: &[Observation], out: &mut [u64]) {
        let cfg = self.config.clone();
        if cfg.gallery_n == 0 || cfg.mode == FusionMode::GeometryOnly {
            return;
        }
        let mut looks: Vec<(usize, Vec<f32>)> = Vec::new();
        for (k, g) in self.tracks.iter_mut().enumerate() {
            if g.last_seen != t || g.exited.is_some() {
                continue;
            }
            let embs: Vec<&Vec<f32>> = (0..obs.len()).filter(|&i| out[i] == g.id).filter_map(|i| obs[i].embedding.as_ref()).collect();
            if embs.is_empty() {
                continue;
            }
            let mut sum = vec![0.0f32; embs[0].len()];
            for e in &embs {
                for (s, x) in sum.iter_mut().zip(e.iter()) {
                    *s += x;
                }
            }
            let look = unit(sum);
            match &mut g.gallery {
                Some((gsum, n)) if *n < cfg.gallery_n && gsum.len() == look.len() => {
                    for (s, x) in gsum.iter_mut().zip(&look) {
                        *s += x;
                    }
                    *n += 1;
                }
                None => g.gallery = Some((look.clone(), 1)),
                _ => {}
            }
            looks.push((k, look));
        }
        let full: Vec<(usize, Vec<f32>, Vec<f32>)> = looks
            .into_iter()
            .filter_map(|(k, look)| match &self.tracks[k].gallery {
                Some((gsum, n)) if *n >= cfg.gallery_n && gsum.len() == look.len() => Some((k, unit(gsum.clone()), look)),
                _ => None,
            })
            .collect();
        let mut seen_pairs = Vec::new();
        let mut swaps = Vec::new();
        for x in 0..full.len() {
            for y in x + 1..full.len() {
                let (a, b) = (&full[x], &full[y]);
                let gain = cosine(&a.1, &b.2) + cosine(&b.1, &a.2) - cosine(&a.1, &a.2) - cosine(&b.1, &b.2);
                let (ia, ib) = (self.tracks[a.0].id, self.tracks[b.0].id);
                let key = (ia.min(ib), ia.max(ib));
                let ev = self.swap_ev.entry(key).or_insert(0.0);
                *ev = (*ev * cfg.swap_decay + gain).max(0.0);
                seen_pairs.push(key);
                if *ev > cfg.swap_evidence {
                    swaps.push((a.0, b.0, key));
                }
            }
        }
        self.swap_ev.retain(|k, _| seen_pairs.contains(k));
        let mut done: Vec<usize> = Vec::new();
        for (ka, kb, key) in swaps {
            if done.contains(&ka) || done.contains(&kb) {
                continue;
            }
            done.extend([ka, kb]);
            self.swap_ev.remove(&key);
            let (ia, ib) = (self.tracks[ka].id, self.tracks[kb].id);
            let (lo, hi) = if ka < kb { (ka, kb) } else { (kb, ka) };
            let (left, right) = self.tracks.split_at_mut(hi);
            let (a, b) = (&mut left[lo], &mut right[0]);
            std::mem::swap(&mut a.id, &mut b.id);
            std::mem::swap(&mut a.session, &mut b.session);
            std::mem::swap(&mut a.gallery, &mut b.gallery);
            std::mem::swap(&mut a.in_gate_since, &mut b.in_gate_since);
            let flip = |g: &mut u64| {
                if *g == ia {
                    *g = ib;
                } else if *g == ib {
                    *g = ia;
                }
            };
            self.links.values_mut().for_each(flip);
            out.iter_mut().for_each(flip);
            self.sightings = std::mem::take(&mut self.sightings)
                .into_iter()
                .map(|((g, c), v)| {
                    let mut g = g;
                    flip(&mut g);
                    ((g, c), v)
                })
                .collect();
            self.swaps += 1;
        }
    }

    /// Whether two global tracks may be one person seen twice: not if each holds a session
    /// (each shopper scans their own). Also keeping them apart when their galleries are
    /// unlike (`min_appearance`) changed nothing on the development stores but 202, where the
    /// session rule alone did as well.
    fn may_be_one(a: &super::GlobalTrack, b: &super::GlobalTrack) -> bool {
        a.session.is_none() || b.session.is_none()
    }

    /// Two global tracks seen at the same time by different cameras, within `merge_m` for
    /// `merge_s`, are one person: the younger joins the older.
    pub(super) fn merge(&mut self, t: f64, obs: &[Observation], out: &mut [u64]) {
        let cfg = self.config.clone();
        let seen: Vec<usize> = (0..self.tracks.len()).filter(|&k| self.tracks[k].last_seen == t).collect();
        let cams_of = |id: u64| -> Vec<usize> { (0..obs.len()).filter(|&i| out[i] == id).map(|i| obs[i].cam).collect() };
        let mut joins = Vec::new();
        for (x, &a) in seen.iter().enumerate() {
            let mut partner = None;
            for &b in &seen[x + 1..] {
                let (ga, gb) = (&self.tracks[a], &self.tracks[b]);
                let (ca, cb) = (cams_of(ga.id), cams_of(gb.id));
                if dist(ga.pos, gb.pos) <= cfg.merge_m && !ca.iter().any(|c| cb.contains(c)) && Self::may_be_one(ga, gb) {
                    partner = Some(gb.id);
                    break;
                }
            }
            let g = &mut self.tracks[a];
            g.near = match (partner, g.near) {
                (Some(p), Some((q, since))) if p == q => Some((q, since)),
                (Some(p), _) => Some((p, t)),
                (None, _) => None,
            };
            if let Some((p, since)) = g.near {
                if t - since >= cfg.merge_s {
                    joins.push((g.id.min(p), g.id.max(p)));
                }
            }
        }
        for (keep, drop) in joins {
            let (Some(k), Some(d)) = (self.index_of(keep), self.index_of(drop)) else { continue };
            if self.tracks[k].session.is_none() {
                self.tracks[k].session = self.tracks[d].session.take();
            }
            if self.tracks[k].in_gate_since.is_none() {
                self.tracks[k].in_gate_since = self.tracks[d].in_gate_since;
            }
            self.tracks[k].near = None;
            self.tracks.remove(d);
            for g in self.links.values_mut() {
                if *g == drop {
                    *g = keep;
                }
            }
            for (o, how) in out.iter_mut().zip(&mut self.how) {
                if *o == drop {
                    *o = keep;
                    *how = Link::Merged;
                }
            }
        }
    }
}
