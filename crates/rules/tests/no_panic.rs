//! Bad input never panics: random edits of real rule files and configs give errors, not
//! crashes (the CEL parser, for one, panics on some inputs and must be contained).

use proptest::prelude::*;
use trailwatch_config::Config;
use trailwatch_rules::{RuleSet, RuleSource, builtin_sources, lint};

fn mutate(text: &str, at: usize, len: usize, insert: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let at = at % (chars.len() + 1);
    let end = (at + len).min(chars.len());
    let mut out: String = chars[..at].iter().collect();
    out.push_str(insert);
    out.extend(&chars[end..]);
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn mutated_rules_do_not_panic(
        file in 0usize..16,
        at in 0usize..20_000,
        len in 0usize..8,
        insert in prop::sample::select(vec!["", "(", ")", "\"", "'", ":", "- ", "{{", "}}", "[", "]", "==", "\n", "  ", "{%", "*", "&a", "*a"]),
    ) {
        let sources = builtin_sources();
        let src = &sources[file % sources.len()];
        let text = mutate(&src.text, at, len, insert);
        let mutated = [RuleSource::new(src.origin.clone(), text)];
        let _ = RuleSet::compile(&mutated, &Config::default());
        let _ = lint::lint(&mutated, &Config::default());
    }

    #[test]
    fn random_cel_does_not_panic(expr in "[a-z().=!<>&|'\\[\\], 0-9]{0,24}") {
        let rule = format!(
            "id: r\ntitle: T\nseverity: low\nmatch: {{source: [aws.ec2]}}\nwhere: {:?}\nalert: {{title: x}}\n",
            expr
        );
        let _ = RuleSet::compile(&[RuleSource::new("t.yaml", rule)], &Config::default());
    }

    #[test]
    fn mutated_configs_do_not_panic(
        at in 0usize..2_000,
        len in 0usize..8,
        insert in prop::sample::select(vec!["", ":", "- ", "[", "]", "{", "}", "\n", "  ", "'", "&a", "*a", "<<: *a"]),
    ) {
        let text = include_str!("../../config/examples/trailwatch.yaml");
        let _ = trailwatch_config::parse("t.yaml", &mutate(text, at, len, insert));
    }
}
