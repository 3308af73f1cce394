//! Dumps a compiled graph: one line per node with op, input and output shapes.
//! usage: walkout-graph-dump MODEL_JSON H W

fn main() -> anyhow::Result<()> {
    let a: Vec<String> = std::env::args().collect();
    anyhow::ensure!(a.len() == 4, "usage: walkout-graph-dump MODEL_JSON H W");
    let g = walkout::graph::tfjs::load(std::path::Path::new(&a[1]))?;
    let s = walkout::graph::optimize::specialize(&g, &[vec![1, a[2].parse()?, a[3].parse()?, 3]])?;
    for n in &s.nodes {
        let shapes = |ids: &[usize]| {
            ids.iter()
                .map(|&v| {
                    format!("{:?}{}", s.values[v].shape.clone().unwrap_or_default(), if s.consts.contains_key(&v) { "c" } else { "" })
                })
                .collect::<Vec<_>>()
                .join(" ")
        };
        println!("{:<18} {} -> {}   {}", n.op.name(), shapes(&n.inputs), shapes(&n.outputs), n.name);
    }
    Ok(())
}
