#![allow(clippy::unwrap_used)]
//! MoveNet MultiPose on walkout's CPU executor against TF.js (pure-JS CPU backend) outputs
//! recorded by scripts/reference/tfjs-reference.mjs on real photos and video frames.

mod common;

use walkout::graph::tfjs;
use walkout::models::Repository;
use walkout::pipeline::PosePipeline;
use walkout::runtime::{cpu::CpuExecutor, Executor};

const TOL: f64 = 1e-3;

#[test]
fn cpu_matches_tfjs_on_every_reference_input() {
    let graph = tfjs::load(&common::movenet_json()).expect("load movenet");
    let dir = common::fetched("data/reference");
    let mut cases: Vec<_> = std::fs::read_dir(&dir)
        .expect("read reference dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(".input.npy"))
        .collect();
    cases.sort();
    assert!(
        cases.len() >= 7,
        "expected at least 7 reference cases, found {}",
        cases.len()
    );
    let exec = CpuExecutor::new();
    let mut worst = 0.0f64;
    let mut non_square = 0;
    for input_path in cases {
        let name = input_path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .replace(".input.npy", "");
        let input = walkout::npy::read(&input_path).expect("input npy");
        let want = walkout::npy::read(&dir.join(format!("{name}.output.npy"))).expect("output npy");
        if input.shape[1] != input.shape[2] {
            non_square += 1;
        }
        let mut plan = exec
            .compile(&graph, std::slice::from_ref(&input.shape))
            .expect("compile");
        let got = plan.run(&[input]).expect("run");
        assert_eq!(got[0].shape, vec![1, 6, 56]);
        let d = got[0].max_abs_diff(&want).expect("same shape");
        println!("{name}: max abs diff vs TF.js = {d:.3e}");
        assert!(d <= TOL, "{name}: max abs diff {d} > {TOL}");
        worst = worst.max(d);
    }
    assert!(non_square >= 1, "at least one non-square input");
    println!("worst max abs diff = {worst:.3e}");
}

/// Person boxes in ultralytics' bus.jpg (810x1080), [x0, y0, x1, y1], as annotated by hand:
/// the three pedestrians fully in view.
const BUS_PEOPLE: [[f32; 4]; 3] = [
    [50.0, 399.0, 244.0, 903.0],
    [223.0, 407.0, 344.0, 857.0],
    [669.0, 392.0, 809.0, 877.0],
];

fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let ix = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let iy = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = ix * iy;
    inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)
}

#[test]
fn bus_persons_lie_on_the_people() {
    common::movenet_json();
    let repo = Repository::open(common::root().join("models"));
    let mut pipe = PosePipeline::new(&repo, "movenet-multipose", "cpu", None).expect("pipeline");
    let img = walkout::vision::image_io::load(&common::fetched("data/bus.jpg")).expect("bus.jpg");
    let persons = pipe.run(&img).expect("pose");
    for p in &persons {
        println!("person score {:.3} box {:?}", p.score, p.bbox);
    }
    // Every annotated pedestrian is found.
    for gt in &BUS_PEOPLE {
        let best = persons.iter().map(|p| iou(&p.bbox, gt)).fold(0.0, f32::max);
        assert!(
            best >= 0.5,
            "pedestrian {gt:?} not found (best IoU {best:.2})"
        );
    }
    // Every confident person lies on a pedestrian, and so do its confident keypoints.
    for p in persons.iter().filter(|p| p.score >= 0.3) {
        let gt = BUS_PEOPLE
            .iter()
            .chain(std::iter::once(&[0.0, 540.0, 70.0, 880.0]))
            .max_by(|a, b| iou(&p.bbox, a).total_cmp(&iou(&p.bbox, b)))
            .unwrap();
        assert!(
            iou(&p.bbox, gt) >= 0.4,
            "person {:?} lies on nobody",
            p.bbox
        );
        let (mx, my) = ((gt[2] - gt[0]) * 0.15, (gt[3] - gt[1]) * 0.1);
        let kps: Vec<_> = p.keypoints.iter().filter(|k| k.score >= 0.3).collect();
        let inside = kps
            .iter()
            .filter(|k| {
                k.x >= gt[0] - mx && k.x <= gt[2] + mx && k.y >= gt[1] - my && k.y <= gt[3] + my
            })
            .count();
        assert!(
            kps.len() >= 8 && inside == kps.len(),
            "person {:?}: {inside}/{} keypoints on the body",
            p.bbox,
            kps.len()
        );
        // Anatomy: the nose is above the ankles.
        let (nose, la, ra) = (p.keypoints[0], p.keypoints[15], p.keypoints[16]);
        if nose.score > 0.3 && la.score > 0.3 && ra.score > 0.3 {
            assert!(
                nose.y < la.y && nose.y < ra.y,
                "person {:?}: nose below ankles",
                p.bbox
            );
        }
    }
}
