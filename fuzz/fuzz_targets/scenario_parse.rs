//! The scenario checker on arbitrary text: it must return a scenario or an error for people,
//! never panic (a panic here would be a crash of `runbench run` on a typo). The error's text is
//! rendered too, since it slices the input to show the offending line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use runbench::scenario::{parse, Host};
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse(
        Path::new("fuzz.toml"),
        text,
        &Host {
            cpus: 4,
            elsewhere: false,
        },
    ) {
        // What meta.json records of an accepted scenario.
        Ok(scenario) => drop(serde_json::to_string(&scenario)),
        Err(e) => drop(e.to_string()),
    }
});
