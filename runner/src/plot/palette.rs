//! One colour per runtime, the same in every chart of every run, so a reader learns it once.
//! Known runtimes have fixed colours (chosen to stay apart from each other on white, the plain
//! epoll reference in near-black); any other name hashes (FNV-1a, stable across builds and
//! platforms, unlike std's hasher) into a second palette that none of the fixed ones use.

use plotters::style::RGBColor;

const KNOWN: &[(&str, RGBColor)] = &[
    ("tokio", RGBColor(0x1f, 0x77, 0xb4)),            // blue
    ("tokio-per-core", RGBColor(0x17, 0xbe, 0xcf)),   // cyan
    ("async-std", RGBColor(0xff, 0x7f, 0x0e)),        // orange
    ("smol", RGBColor(0x2c, 0xa0, 0x2c)),             // green
    ("glommio", RGBColor(0x94, 0x67, 0xbd)),          // purple
    ("monoio", RGBColor(0x8c, 0x56, 0x4b)),           // brown
    ("epoll", RGBColor(0x30, 0x30, 0x30)),            // near-black: the reference
    ("embassy", RGBColor(0xe3, 0x77, 0xc2)),          // pink
    ("embassy-executor", RGBColor(0xd6, 0x27, 0x28)), // red
    ("compio", RGBColor(0x00, 0x80, 0x80)),           // teal
    ("kimojio", RGBColor(0xb8, 0x86, 0x0b)),          // dark goldenrod
    ("std-threads", RGBColor(0x90, 0x90, 0x90)),      // grey: the other baseline
];

/// For runtimes not in [`KNOWN`]; darker and lighter tones that differ from every known colour.
const OTHERS: &[RGBColor] = &[
    RGBColor(0xbc, 0xbd, 0x22), // olive
    RGBColor(0x39, 0x3b, 0x79), // navy
    RGBColor(0x63, 0x79, 0x39), // moss
    RGBColor(0xe7, 0xba, 0x52), // gold
    RGBColor(0x84, 0x3c, 0x39), // maroon
    RGBColor(0x7b, 0x41, 0x73), // plum
    RGBColor(0x6b, 0x6e, 0xcf), // periwinkle
    RGBColor(0x52, 0x54, 0xa3), // indigo
];

pub fn colour(runtime: &str) -> RGBColor {
    KNOWN
        .iter()
        .find(|(name, _)| *name == runtime)
        .map(|&(_, c)| c)
        .unwrap_or_else(|| OTHERS[(fnv1a(runtime.as_bytes()) % OTHERS.len() as u64) as usize])
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_runtimes_have_distinct_fixed_colours() {
        for (i, (a, ca)) in KNOWN.iter().enumerate() {
            assert_eq!(colour(a), *ca);
            for (b, cb) in &KNOWN[i + 1..] {
                assert_ne!(ca, cb, "{a} and {b} share a colour");
            }
        }
    }

    #[test]
    fn unknown_runtime_colour_is_stable_and_not_a_known_one() {
        // FNV-1a of "my-runtime" is fixed, so this pins the mapping across builds.
        let c = colour("my-runtime");
        assert_eq!(c, colour("my-runtime"));
        assert!(OTHERS.contains(&c));
        assert!(!KNOWN.iter().any(|(_, k)| *k == c));
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
