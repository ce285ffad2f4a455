//! Every configuration shipped in `experiments/` parses and validates.
//!
//! Run: `cargo test --release --test experiments`.

#[test]
fn every_experiment_config_validates() {
    let mut n = 0;
    for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/experiments")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let name = path.file_name().unwrap().to_str().unwrap();
        let checked = if name.starts_with("convergence") {
            samsde::study::convergence::ConvergenceStudy::from_toml(&text).map(|_| ())
        } else if name.starts_with("saddle") {
            samsde::study::setup::parse_toml(&text)
                .and_then(samsde::study::saddle::SaddleStudy::new)
                .map(|_| ())
        } else if name.starts_with("flatness") {
            samsde::study::setup::parse_toml(&text)
                .and_then(samsde::study::flatness::FlatnessStudy::new)
                .map(|_| ())
        } else if name.starts_with("trajectories") {
            samsde::study::setup::parse_toml(&text)
                .and_then(samsde::study::trajectories::TrajectoriesStudy::new)
                .map(|_| ())
        } else {
            panic!("{name}: no study for this config name")
        };
        checked.unwrap_or_else(|e| panic!("{name}: {e}"));
        n += 1;
    }
    assert!(n >= 5, "expected the shipped configs, found {n}");
}
