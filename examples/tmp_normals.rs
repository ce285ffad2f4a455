use samsde::ensemble::normals::BlockNormals;
use std::time::Instant;
fn main() {
    let streams: Vec<u64> = (0..256).collect();
    let mut g = BlockNormals::new(1, &streams);
    let mut out = vec![0.0; 20 * 256];
    let reps = 4000;
    let t = Instant::now();
    let mut acc = 0.0;
    for _ in 0..reps {
        g.fill(&mut out, 20, 0.1);
        acc += out[7];
    }
    let dt = t.elapsed().as_secs_f64();
    println!(
        "new: {:.3} ns/normal ({acc})",
        dt / (reps * 20 * 256) as f64 * 1e9
    );
    use rand_distr::{Distribution, StandardNormal};
    let mut rngs: Vec<_> = streams
        .iter()
        .map(|&s| samsde::ensemble::rng::path_rng(1, s))
        .collect();
    let t = Instant::now();
    for _ in 0..reps / 4 {
        for (col, r) in out.chunks_exact_mut(20).zip(rngs.iter_mut()) {
            for v in col {
                let n: f64 = StandardNormal.sample(r);
                *v = 0.1 * n;
            }
        }
        acc += out[7];
    }
    let dt = t.elapsed().as_secs_f64();
    println!(
        "old: {:.3} ns/normal ({acc})",
        dt / (reps / 4 * 20 * 256) as f64 * 1e9
    );
}
