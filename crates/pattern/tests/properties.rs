//! Property tests: the compiled matcher agrees with the reference
//! interpreter on random patterns (every operator) and random events over a
//! small alphabet (arrays of objects, nulls, numbers in several forms,
//! dotted keys), also with many patterns in one matcher and after removals;
//! and a screen never rules out an event some pattern matches.

use proptest::prelude::*;
use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};
use trailwatch_pattern::{Known, Matcher, Pattern, Scratch, reference};

const KEYS: &[&str] = &["a", "b", "c", "a.b"];

fn key() -> impl Strategy<Value = String> {
    prop::sample::select(KEYS).prop_map(|k| format!("\"{k}\""))
}

fn string_lit() -> impl Strategy<Value = &'static str> {
    prop::sample::select(
        &[
            "\"x\"",
            "\"X\"",
            "\"xy\"",
            "\"yx\"",
            "\"\"",
            "\"x*y\"",
            "\"10.0.0.1\"",
            "\"010.0.0.1\"",
            "\"::1\"",
            "\"Straße\"",
        ][..],
    )
}

fn number_lit() -> impl Strategy<Value = &'static str> {
    prop::sample::select(
        &[
            "1",
            "1.0",
            "1e0",
            "10e-1",
            "2",
            "0",
            "-0",
            "3.5",
            "-7",
            "37.807807921694092",
            "1e400",
        ][..],
    )
}

fn scalar() -> impl Strategy<Value = String> {
    prop_oneof![
        string_lit().prop_map(str::to_owned),
        number_lit().prop_map(str::to_owned),
        prop::sample::select(&["true", "false", "null"][..]).prop_map(str::to_owned),
    ]
}

fn condition() -> impl Strategy<Value = String> {
    let s = string_lit;
    prop_oneof![
        scalar(),
        s().prop_map(|v| format!("{{\"prefix\":{v}}}")),
        s().prop_map(|v| format!("{{\"suffix\":{v}}}")),
        s().prop_map(|v| format!("{{\"prefix\":{{\"equals-ignore-case\":{v}}}}}")),
        s().prop_map(|v| format!("{{\"suffix\":{{\"equals-ignore-case\":{v}}}}}")),
        s().prop_map(|v| format!("{{\"equals-ignore-case\":{v}}}")),
        s().prop_map(|v| format!("{{\"exactly\":{v}}}")),
        prop::sample::select(
            &[
                "\"x*\"",
                "\"*y\"",
                "\"*\"",
                "\"x*y\"",
                "\"\"",
                "\"x\\\\*y\"",
                "\"*x*\""
            ][..]
        )
        .prop_map(|w| format!("{{\"wildcard\":{w}}}")),
        s().prop_map(|v| format!("{{\"anything-but\":{v}}}")),
        number_lit().prop_map(|v| format!("{{\"anything-but\":{v}}}")),
        (s(), s()).prop_map(|(a, b)| format!("{{\"anything-but\":[{a},{b}]}}")),
        (number_lit(), number_lit()).prop_map(|(a, b)| format!("{{\"anything-but\":[{a},{b}]}}")),
        prop::sample::select(&["prefix", "suffix", "wildcard", "equals-ignore-case"][..])
            .prop_flat_map(|op| {
                prop::sample::select(&["\"x\"", "\"y\"", "[\"x\",\"Y\"]", "\"x*\""][..])
                    .prop_map(move |v| format!("{{\"anything-but\":{{\"{op}\":{v}}}}}"))
            }),
        prop::sample::select(
            &[
                "[\"=\",1]",
                "[\"<\",2]",
                "[\"<=\",1]",
                "[\">\",0]",
                "[\">=\",1,\"<\",3.5]",
                "[\">\",-10,\"<=\",0]",
            ][..]
        )
        .prop_map(|r| format!("{{\"numeric\":{r}}}")),
        any::<bool>().prop_map(|b| format!("{{\"exists\":{b}}}")),
        prop::sample::select(&["\"10.0.0.0/24\"", "\"::/0\"", "\"0.0.0.0/0\""][..])
            .prop_map(|c| format!("{{\"cidr\":{c}}}")),
    ]
}

fn leaf() -> impl Strategy<Value = String> {
    prop::collection::vec(condition(), 1..4).prop_map(|c| format!("[{}]", c.join(",")))
}

/// A pattern object: fields are leaves, nested objects or `$or` groups.
fn pattern_object() -> impl Strategy<Value = String> {
    let base = prop::collection::vec((key(), leaf()), 1..4).prop_map(|fields| {
        let body: Vec<String> = fields
            .into_iter()
            .map(|(k, v)| format!("{k}:{v}"))
            .collect();
        format!("{{{}}}", body.join(","))
    });
    base.prop_recursive(2, 12, 3, |inner| {
        prop::collection::vec(
            prop_oneof![
                (key(), leaf()).prop_map(|(k, v)| format!("{k}:{v}")),
                (key(), inner.clone()).prop_map(|(k, v)| format!("{k}:{v}")),
                prop::collection::vec(inner, 2..4)
                    .prop_map(|alts| format!("\"$or\":[{}]", alts.join(","))),
            ],
            1..4,
        )
        .prop_map(|fields| format!("{{{}}}", fields.join(",")))
    })
}

fn event_value() -> impl Strategy<Value = String> {
    scalar().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(","))),
            prop::collection::vec((key(), inner), 0..4).prop_map(|fields| {
                let body: Vec<String> = fields
                    .into_iter()
                    .map(|(k, v)| format!("{k}:{v}"))
                    .collect();
                format!("{{{}}}", body.join(","))
            }),
        ]
    })
}

fn event() -> impl Strategy<Value = String> {
    prop::collection::vec((key(), event_value()), 0..4).prop_map(|fields| {
        let body: Vec<String> = fields
            .into_iter()
            .map(|(k, v)| format!("{k}:{v}"))
            .collect();
        format!("{{{}}}", body.join(","))
    })
}

/// Array-consistency focus: conditions on fields of objects inside nested
/// arrays, with values drawn from a tiny set so matches are frequent.
fn array_pattern() -> impl Strategy<Value = String> {
    let cond = prop_oneof![
        prop::sample::select(&["1", "2", "\"x\"", "null"][..]).prop_map(str::to_owned),
        any::<bool>().prop_map(|b| format!("{{\"exists\":{b}}}")),
        Just("{\"anything-but\":1}".to_owned()),
    ];
    let field = (
        prop::sample::select(&["f", "l", "g.h", "g"][..]),
        prop::collection::vec(cond, 1..3),
    )
        .prop_map(|(k, c)| format!("\"{k}\":[{}]", c.join(",")));
    prop::collection::vec(field, 1..4).prop_map(|f| format!("{{\"e\":{{{}}}}}", f.join(",")))
}

fn array_event() -> impl Strategy<Value = String> {
    let scalar = prop::sample::select(&["1", "2", "\"x\"", "null"][..]).prop_map(str::to_owned);
    let obj = prop::collection::vec(
        (
            prop::sample::select(&["f", "l", "g", "g.h"][..]),
            prop_oneof![
                scalar.clone(),
                prop::collection::vec(scalar.clone(), 0..3)
                    .prop_map(|v| format!("[{}]", v.join(","))),
                (prop::sample::select(&["h", "k"][..]), scalar)
                    .prop_map(|(k, v)| format!("{{\"{k}\":{v}}}")),
            ],
        ),
        0..4,
    )
    .prop_map(|f| {
        let body: Vec<String> = f.into_iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
        format!("{{{}}}", body.join(","))
    });
    let element = prop_oneof![
        obj.clone(),
        prop::collection::vec(obj.clone(), 0..3).prop_map(|v| format!("[{}]", v.join(","))),
    ];
    prop::collection::vec(element, 0..4).prop_map(|v| format!("{{\"e\":[{}]}}", v.join(",")))
}

/// Every scalar leaf of an event, as (dot-joined path, the string if it is one), duplicate
/// keys included (serde_json's `Value` would keep only the last).
fn leaves(event: &str) -> Option<Vec<(String, Option<String>)>> {
    struct Walk<'p> {
        path: &'p str,
        out: &'p mut Vec<(String, Option<String>)>,
    }
    impl<'de> Visitor<'de> for Walk<'_> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("JSON")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<(), E> {
            self.out.push((self.path.to_owned(), Some(v.to_owned())));
            Ok(())
        }
        fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<(), E> {
            self.out.push((self.path.to_owned(), None));
            Ok(())
        }
        fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<(), E> {
            self.visit_bool(false)
        }
        fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<(), E> {
            self.visit_bool(false)
        }
        fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<(), E> {
            self.visit_bool(false)
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
            self.visit_bool(false)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            while seq
                .next_element_seed(Walk {
                    path: self.path,
                    out: &mut *self.out,
                })?
                .is_some()
            {}
            Ok(())
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            while let Some(key) = map.next_key::<String>()? {
                let path = if self.path.is_empty() {
                    key
                } else {
                    format!("{}.{key}", self.path)
                };
                map.next_value_seed(Walk {
                    path: &path,
                    out: &mut *self.out,
                })?;
            }
            Ok(())
        }
    }
    impl<'de> serde::de::DeserializeSeed<'de> for Walk<'_> {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_any(self)
        }
    }
    let mut out = Vec::new();
    let mut de = serde_json::Deserializer::from_str(event);
    // serde_json refuses numbers beyond f64 (1e400), which the matcher takes: no leaves.
    serde::de::DeserializeSeed::deserialize(
        Walk {
            path: "",
            out: &mut out,
        },
        &mut de,
    )
    .ok()?;
    Some(out)
}

/// What a decoder could know about `field` from the leaves: absent, the one string, or
/// nothing certain.
fn known<'a>(leaves: &'a [(String, Option<String>)], field: &str) -> Known<'a> {
    let mut at = leaves.iter().filter(|(p, _)| p == field);
    match (at.next(), at.next()) {
        (None, _) => Known::Absent,
        (Some((_, Some(s))), None) => Known::Str(s),
        _ => Known::Unknown,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn array_consistency_agrees(pattern in array_pattern(), event in array_event()) {
        let Ok(p) = Pattern::parse(&pattern) else { return Ok(()) };
        let expected = reference::matches(&p, event.as_bytes()).unwrap();
        let mut m = Matcher::new();
        m.add(0u32, &p);
        let got = !m.matches(event.as_bytes()).unwrap().is_empty();
        prop_assert_eq!(got, expected, "pattern {} event {}", pattern, event);
    }

    #[test]
    fn single_pattern_agrees(pattern in pattern_object(), event in event()) {
        // Random patterns may be invalid (e.g. a too-complex or mixed list);
        // the property is about valid ones.
        let Ok(p) = Pattern::parse(&pattern) else { return Ok(()) };
        let expected = reference::matches(&p, event.as_bytes()).unwrap();
        let mut m = Matcher::new();
        m.add(0u32, &p);
        let got = !m.matches(event.as_bytes()).unwrap().is_empty();
        prop_assert_eq!(got, expected, "pattern {} event {}", pattern, event);
    }

    #[test]
    fn many_patterns_agree(patterns in prop::collection::vec(pattern_object(), 1..12),
                           events in prop::collection::vec(event(), 1..6),
                           remove in prop::collection::vec(any::<bool>(), 12)) {
        let parsed: Vec<(u32, Pattern)> = patterns
            .iter()
            .enumerate()
            .filter_map(|(i, t)| Pattern::parse(t).ok().map(|p| (u32::try_from(i).unwrap(), p)))
            .collect();
        let mut m = Matcher::new();
        for (id, p) in &parsed {
            m.add(*id, p);
        }
        // Remove some, re-add one of them under the same id: the matcher
        // must behave as if built from scratch.
        let mut live: Vec<&(u32, Pattern)> = Vec::new();
        for (k, entry) in parsed.iter().enumerate() {
            if remove[k % remove.len()] {
                prop_assert!(m.remove(&entry.0));
            } else {
                live.push(entry);
            }
        }
        if let Some((id, p)) = live.first() {
            m.add(*id, p);
        }
        prop_assert_eq!(m.len(), live.len());
        let mut scratch = Scratch::default();
        let mut out = Vec::new();
        for e in &events {
            m.matches_with(e.as_bytes(), &mut scratch, &mut out).unwrap();
            out.sort_unstable();
            let mut expected: Vec<u32> = live
                .iter()
                .filter(|(_, p)| reference::matches(p, e.as_bytes()).unwrap())
                .map(|(id, _)| *id)
                .collect();
            expected.sort_unstable();
            prop_assert_eq!(&out, &expected, "event {}", e);
        }
    }

    #[test]
    fn screen_never_rules_out_a_match(patterns in prop::collection::vec(pattern_object(), 1..6),
                                      events in prop::collection::vec(event(), 1..6),
                                      fields in prop::collection::vec(
                                          prop::sample::select(&["a", "b", "c", "a.b", "b.c", "a.b.c"][..]), 1..4)) {
        let mut m = Matcher::new();
        for (i, t) in patterns.iter().enumerate() {
            if let Ok(p) = Pattern::parse(t) {
                m.add(i, &p);
            }
        }
        let screen = m.screen(&fields);
        for e in &events {
            let Ok(matched) = m.matches(e.as_bytes()) else { continue };
            let Some(leaves) = leaves(e) else { continue };
            let values: Vec<Known<'_>> = screen.fields().map(|f| known(&leaves, f)).collect();
            if !matched.is_empty() {
                prop_assert!(screen.may_match(&values),
                    "screen ruled out a match: patterns {:?} event {} fields {:?}", patterns, e, fields);
            }
        }
    }

}
