//! Every configuration shipped in `experiments/` is registered with its study and validates.
//!
//! Run: `cargo test --release --test experiments`.

use samsde::registry::{studies, Overrides};

#[test]
fn every_experiment_config_is_registered_and_validates() {
    let mut registered = Vec::new();
    for s in studies() {
        assert_eq!(
            s.experiments[0].path, s.default.path,
            "{}: default first",
            s.name
        );
        for e in s.experiments {
            let on_disk = std::fs::read_to_string(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(e.path),
            )
            .unwrap_or_else(|err| panic!("{}: {err}", e.path));
            assert_eq!(on_disk, e.text, "{}: embedded text is stale", e.path);
            // Every shipped configuration runs without --yes on two threads.
            let limits = samsde::registry::Limits {
                threads: 2,
                max_seconds: Some(samsde::study::budget::CONFIRM_SECONDS),
                ..Default::default()
            };
            (s.prepare_limited)(e.text, &Overrides::default(), &limits)
                .unwrap_or_else(|err| panic!("{}: {err}", e.path));
            registered.push(e.path.trim_start_matches("experiments/").to_string());
        }
    }
    let mut n = 0;
    for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/experiments")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.ends_with(".toml") {
            assert!(
                registered.contains(&name),
                "experiments/{name} is not registered with any study (src/report/<study>.rs)"
            );
            n += 1;
        }
    }
    assert!(n >= 6, "expected the shipped configs, found {n}");
}
