//! The business decisions, made by the study from seeded templates (Shammie's own), so
//! every scenario's right answer is computed, not judged.
//!
//! A scenario is a choice between two options under a stated rule (the lower three-year
//! cost of a supplier, the lower five-year cost of a warehouse site, the higher expected
//! net value of a project). The facts the rule needs — each option's figures — are
//! scattered over a set of documents (memos, emails, meeting notes, report excerpts)
//! among facts the rule does not use and routine business text, so reaching the answer
//! means reading all of them. Options are drawn until the better one wins by at least 10%
//! under the rule, so an honest reading settles the decision.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// One decision to make.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scenario {
    /// `supplier-1`, `site-2`, …
    pub id: String,
    /// What must be decided, in one sentence.
    pub question: String,
    /// How the options are to be compared.
    pub rule: String,
    /// The two options, shown as (A) and (B).
    pub options: [String; 2],
    /// The documents, each a title and its text.
    pub documents: Vec<(String, String)>,
    /// Each option's value under the rule.
    pub values: [f64; 2],
    /// The option the rule picks (0: A, 1: B).
    pub correct: usize,
}

/// The domains, in the order scenarios cycle through them.
pub const DOMAINS: [&str; 3] = ["supplier", "site", "project"];

/// A fact for the documents: a sentence, and whether the rule uses it.
struct Fact {
    text: String,
    relevant: bool,
}

fn rel(text: String) -> Fact {
    Fact {
        text,
        relevant: true,
    }
}

fn noise(text: String) -> Fact {
    Fact {
        text,
        relevant: false,
    }
}

const FILLER: [&str; 16] = [
    "Please keep this note within the planning group until the decision is announced.",
    "The finance team will circulate the updated budget template next week.",
    "As usual, figures are in thousands of dollars unless stated otherwise.",
    "Several colleagues asked for more time to review the background material.",
    "We should also confirm the timeline with the legal team before signing anything.",
    "The quarterly all-hands meeting has been moved to Thursday afternoon.",
    "Thanks again to everyone who joined the site visits last month.",
    "The facilities team reminded everyone that the car park will be resurfaced in spring.",
    "A summary of the customer survey will follow in a separate message.",
    "This document replaces the draft circulated earlier in the month.",
    "Questions about the process can go to the programme office.",
    "The board asked for a short written recommendation rather than a presentation.",
    "Travel for the next round of meetings should be booked through the usual portal.",
    "Some of the attachments were too large to send and are on the shared drive.",
    "The steering group meets again at the end of the month.",
    "Minutes of the previous meeting were approved without changes.",
];

const KINDS: [&str; 4] = ["Memo", "Email", "Meeting notes", "Report excerpt"];

fn pick2<'a>(rng: &mut impl Rng, names: &[&'a str]) -> [&'a str; 2] {
    let mut v: Vec<&str> = names.to_vec();
    v.shuffle(rng);
    [v[0], v[1]]
}

/// The values, the better option and the facts of one draw, or `None` when the margin is
/// under 10%.
type Draw = ([f64; 2], usize, Vec<Fact>);

fn margin_ok(values: [f64; 2]) -> bool {
    let (lo, hi) = (values[0].min(values[1]), values[0].max(values[1]));
    hi > 0.0 && (hi - lo) / hi >= 0.10
}

fn supplier(rng: &mut impl Rng, o: [&str; 2]) -> Option<Draw> {
    let quote = [rng.gen_range(30..=60) * 10, rng.gen_range(30..=60) * 10];
    let late = [rng.gen_range(0..=12), rng.gen_range(0..=12)];
    let penalty = rng.gen_range(5..=15);
    let incumbent = rng.gen_range(0..2usize);
    let switching = rng.gen_range(2..=12) * 10;
    let values: [f64; 2] = std::array::from_fn(|i| {
        (3 * quote[i] + 3 * late[i] * penalty + if i == incumbent { 0 } else { switching }) as f64
    });
    if !margin_ok(values) {
        return None;
    }
    let correct = (values[1] < values[0]) as usize;
    let mut facts = Vec::new();
    for i in 0..2 {
        facts.push(rel(format!(
            "{}'s quote for the contract is ${}k a year, fixed for three years.",
            o[i], quote[i]
        )));
        facts.push(rel(format!(
            "Delivery logs show that {} delivered late {} times in the past twelve months.",
            o[i], late[i]
        )));
        facts.push(noise(format!(
            "{} employs about {} people.",
            o[i],
            rng.gen_range(40..=900)
        )));
        facts.push(noise(format!(
            "{} uses {}% recycled board in its standard cartons.",
            o[i],
            rng.gen_range(20..=95)
        )));
    }
    facts.push(rel(format!(
        "{} is our current supplier, so staying with them needs no set-up.",
        o[incumbent]
    )));
    facts.push(rel(format!(
        "Moving our orders to {} would cost about ${switching}k once, for retooling and training.",
        o[1 - incumbent]
    )));
    facts.push(rel(format!(
        "Operations estimates that each late delivery costs us ${penalty}k in lost production."
    )));
    facts.push(noise(format!(
        "{} won a regional packaging design award in {}.",
        o[rng.gen_range(0..2)],
        rng.gen_range(2015..=2024)
    )));
    Some((values, correct, facts))
}

fn site(rng: &mut impl Rng, o: [&str; 2]) -> Option<Draw> {
    let rent = [rng.gen_range(20..=50) * 10, rng.gen_range(20..=50) * 10];
    let transport = [rng.gen_range(10..=40) * 10, rng.gen_range(10..=40) * 10];
    let fitout = [rng.gen_range(5..=30) * 10, rng.gen_range(5..=30) * 10];
    let values: [f64; 2] =
        std::array::from_fn(|i| (5 * (rent[i] + transport[i]) + fitout[i]) as f64);
    if !margin_ok(values) {
        return None;
    }
    let correct = (values[1] < values[0]) as usize;
    let mut facts = Vec::new();
    for i in 0..2 {
        facts.push(rel(format!(
            "The landlord of {} asks ${}k a year in rent.",
            o[i], rent[i]
        )));
        facts.push(rel(format!(
            "Logistics estimates that trucking from {} would cost ${}k a year.",
            o[i], transport[i]
        )));
        facts.push(rel(format!(
            "Fitting out {} (racking, loading bays, offices) would cost ${}k once.",
            o[i], fitout[i]
        )));
        facts.push(noise(format!(
            "{} is {} minutes from the nearest rail station.",
            o[i],
            rng.gen_range(5..=45)
        )));
        facts.push(noise(format!(
            "{} has {} parking spaces.",
            o[i],
            rng.gen_range(40..=300)
        )));
    }
    facts.push(noise(format!(
        "The local council near {} is planning a new bus route.",
        o[rng.gen_range(0..2)]
    )));
    Some((values, correct, facts))
}

fn project(rng: &mut impl Rng, o: [&str; 2]) -> Option<Draw> {
    let cost = [rng.gen_range(5..=30) * 100, rng.gen_range(5..=30) * 100];
    let chance = [rng.gen_range(2..=9) * 10, rng.gen_range(2..=9) * 10];
    let payoff = [rng.gen_range(20..=80) * 100, rng.gen_range(20..=80) * 100];
    let values: [f64; 2] =
        std::array::from_fn(|i| chance[i] as f64 / 100.0 * payoff[i] as f64 - cost[i] as f64);
    // The margin is on the difference relative to the larger payoff at stake.
    let stake = payoff[0].max(payoff[1]) as f64;
    if (values[0] - values[1]).abs() / stake < 0.10 {
        return None;
    }
    let correct = (values[1] > values[0]) as usize;
    let mut facts = Vec::new();
    for i in 0..2 {
        facts.push(rel(format!(
            "{} would cost ${}k to complete.",
            o[i], cost[i]
        )));
        facts.push(rel(format!(
            "The review panel puts {}'s chance of success at {}%.",
            o[i], chance[i]
        )));
        facts.push(rel(format!(
            "If it succeeds, {} is expected to bring in ${}k.",
            o[i], payoff[i]
        )));
        facts.push(noise(format!(
            "{}'s team has {} members.",
            o[i],
            rng.gen_range(3..=25)
        )));
        facts.push(noise(format!(
            "{} was first proposed {} years ago.",
            o[i],
            rng.gen_range(1..=6)
        )));
    }
    facts.push(noise(format!(
        "The lead engineer of {} is moving to another role in the autumn.",
        o[rng.gen_range(0..2)]
    )));
    Some((values, correct, facts))
}

/// Scenario `i` of the built-in set: its domain cycles through [`DOMAINS`]; everything else
/// is drawn from a generator seeded with `i`, so the set is the same in every run.
pub fn scenario(i: usize) -> Scenario {
    let domain = DOMAINS[i % DOMAINS.len()];
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0x5ab0_7a6e ^ i as u64);
    let (question, rule, names): (&str, String, &[&str]) = match domain {
        "supplier" => (
            "Which supplier should get our packaging contract for the next three years?",
            "choose the supplier with the lower total cost over three years: three years of its quote, plus the cost of its late deliveries (its late deliveries in the past twelve months, each year, times what each late delivery costs us), plus any one-off cost of switching to it".into(),
            &["Harlow Packaging", "Brightline Containers", "Norrell Boxworks", "Tamsin Supply", "Quillfield Cartons", "Ostrava Pack"],
        ),
        "site" => (
            "Where should we open the new regional warehouse?",
            "choose the site with the lower total cost over five years: five years of rent and trucking, plus the one-off fit-out".into(),
            &["the Eastfield site", "the Riverside site", "the Northgate site", "the Millbrook site", "the Ashby site"],
        ),
        _ => (
            "Which of two research projects should get this year's innovation budget?",
            "choose the project with the higher expected net value: its chance of success times what it brings in if it succeeds, minus its cost".into(),
            &["Project Atlas", "Project Beacon", "Project Cobalt", "Project Delta", "Project Ember"],
        ),
    };
    let (options, (values, correct, mut facts)) = loop {
        let o = pick2(&mut rng, names);
        let draw = match domain {
            "supplier" => supplier(&mut rng, o),
            "site" => site(&mut rng, o),
            _ => project(&mut rng, o),
        };
        if let Some(d) = draw {
            break (o, d);
        }
    };
    facts.shuffle(&mut rng);
    // Two or three facts per document, each among routine text.
    let mut documents = Vec::new();
    let mut rest = &facts[..];
    while !rest.is_empty() {
        let take = rng.gen_range(2..=3).min(rest.len());
        let (these, next) = rest.split_at(take);
        rest = next;
        let mut sentences: Vec<String> = these.iter().map(|f| f.text.clone()).collect();
        for _ in 0..rng.gen_range(2..=4) {
            sentences.push(FILLER.choose(&mut rng).expect("filler").to_string());
        }
        sentences.shuffle(&mut rng);
        let kind = KINDS.choose(&mut rng).expect("kinds");
        documents.push((
            format!("{kind} {}", documents.len() + 1),
            sentences.join(" "),
        ));
    }
    debug_assert!(facts.iter().any(|f| f.relevant));
    Scenario {
        id: format!("{domain}-{}", i / DOMAINS.len() + 1),
        question: question.to_string(),
        rule,
        options: options.map(String::from),
        documents,
        values,
        correct,
    }
}

/// The documents as the assistant reads them.
pub fn documents_text(s: &Scenario) -> String {
    s.documents
        .iter()
        .map(|(t, d)| format!("## {t}\n{d}"))
        .collect::<Vec<_>>()
        .join("\n\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each rule recomputed from the numbers in the documents' sentences.
    #[test]
    fn every_answer_follows_from_the_documents() {
        for i in 0..30 {
            let s = scenario(i);
            assert_eq!(s, scenario(i), "the same every time");
            let docs = documents_text(&s);
            let num = |prefix: &str, suffix: &str| -> f64 {
                let at = docs
                    .find(prefix)
                    .unwrap_or_else(|| panic!("{prefix:?} in {docs}"));
                let t = &docs[at + prefix.len()..];
                t[..t.find(suffix).unwrap()].parse().unwrap()
            };
            let [a, b] = &s.options;
            let v = |o: &str| -> f64 {
                match DOMAINS[i % 3] {
                    "supplier" => {
                        let penalty = num("each late delivery costs us $", "k");
                        let switch = if docs.contains(&format!("{o} is our current supplier")) {
                            0.0
                        } else {
                            num(&format!("Moving our orders to {o} would cost about $"), "k")
                        };
                        3.0 * num(&format!("{o}'s quote for the contract is $"), "k")
                            + 3.0 * penalty * num(&format!("{o} delivered late "), " times")
                            + switch
                    }
                    "site" => {
                        5.0 * (num(&format!("The landlord of {o} asks $"), "k")
                            + num(&format!("trucking from {o} would cost $"), "k"))
                            + num(
                                &format!(
                                    "Fitting out {o} (racking, loading bays, offices) would cost $"
                                ),
                                "k",
                            )
                    }
                    _ => {
                        num(&format!("{o}'s chance of success at "), "%") / 100.0
                            * num(
                                &format!("If it succeeds, {o} is expected to bring in $"),
                                "k",
                            )
                            - num(&format!("{o} would cost $"), "k")
                    }
                }
            };
            let (va, vb) = (v(a), v(b));
            assert!(
                (va - s.values[0]).abs() < 1e-9 && (vb - s.values[1]).abs() < 1e-9,
                "{}",
                s.id
            );
            let better_b = if DOMAINS[i % 3] == "project" {
                vb > va
            } else {
                vb < va
            };
            assert_eq!(s.correct, better_b as usize, "{}", s.id);
        }
    }

    #[test]
    fn domains_cycle_and_ids_count_within_a_domain() {
        assert_eq!(scenario(0).id, "supplier-1");
        assert_eq!(scenario(4).id, "site-2");
        assert_eq!(scenario(8).id, "project-3");
    }
}
