//! Few-shot exemplars for the decomposition strategies, written for Shammie (the paper's
//! own prompts are not reproduced; `prompts=DIR` loads them when a user has them).
//!
//! As in the paper there are 14 exemplars, each a multiple-choice question with a chain
//! of thought and a decomposition into sub-questions. A sub-question may use the answer
//! of an earlier one, written `{k}` (1-based): factored decomposition asks it only once
//! answer `k` is known, with the answer filled in; CoT decomposition writes it filled
//! in. Sub-answers are short so that filling them in reads naturally. The correct
//! letters are spread over A–D (4 A, 4 B, 3 C, 3 D), so the unbiased prompt favours no
//! letter.

use shammie_mcq::mcq::McQuestion;

/// One exemplar.
#[derive(Clone)]
pub struct Exemplar {
    pub question: McQuestion,
    /// The chain of thought (without "Let's think step by step:").
    pub cot: &'static str,
    /// Sub-questions (with `{k}` for the answer of sub-question `k`) and their answers.
    pub steps: &'static [(&'static str, &'static str)],
}

impl Exemplar {
    /// Sub-question `i` (0-based) with the earlier answers filled in.
    pub fn filled(&self, i: usize) -> String {
        fill(self.steps[i].0, |k| {
            self.steps.get(k.wrapping_sub(1)).map(|s| s.1.to_string())
        })
    }

    /// The numbers (1-based) of the sub-answers sub-question `i` uses.
    pub fn uses(&self, i: usize) -> Vec<usize> {
        refs(self.steps[i].0)
    }
}

/// `{k}` references in an exemplar sub-question.
fn refs(template: &str) -> Vec<usize> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => {
                if let Ok(k) = after[..close].parse() {
                    out.push(k);
                }
                rest = &after[close + 1..];
            }
            None => break,
        }
    }
    out
}

/// `template` with each `{k}` replaced by `answer(k)` (left as is when unknown).
pub fn fill(template: &str, answer: impl Fn(usize) -> Option<String>) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after
            .find('}')
            .and_then(|c| after[..c].parse::<usize>().ok().map(|k| (c, k)))
        {
            Some((close, k)) => {
                match answer(k) {
                    Some(a) => out.push_str(&a),
                    None => out.push_str(&rest[open..open + close + 2]),
                }
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

pub fn all() -> Vec<Exemplar> {
    let q = |id: &str, question: &str, choices: &[&str], answer: usize| McQuestion {
        id: id.into(),
        question: question.into(),
        choices: choices.iter().map(|c| c.to_string()).collect(),
        answer,
        source: "exemplar".into(),
    };
    vec![
        Exemplar {
            question: q(
                "e1",
                "A baker makes 4 trays of muffins with 6 muffins on each tray and sells 15 muffins. How many muffins are left?",
                &["7", "9", "11", "24"],
                1,
            ),
            cot: "Each tray holds 6 muffins and there are 4 trays, so the baker made 4 × 6 = 24 muffins. After selling 15, 24 − 15 = 9 muffins are left.",
            steps: &[
                ("How many muffins are on 4 trays of 6 muffins each?", "24"),
                ("What is {1} minus 15?", "9"),
            ],
        },
        Exemplar {
            question: q(
                "e2",
                "Which of these animals is a mammal that lays eggs?",
                &["Penguin", "Bat", "Salmon", "Platypus"],
                3,
            ),
            cot: "Mammals that lay eggs are called monotremes. Penguins are birds and salmon are fish, so neither is a mammal. Bats are mammals, but they give birth to live young. The platypus is a monotreme, so it is a mammal that lays eggs.",
            steps: &[
                ("Which mammals lay eggs?", "the platypus and the echidnas"),
                ("Which of penguin, bat, salmon and platypus is one of {1}?", "the platypus"),
            ],
        },
        Exemplar {
            question: q(
                "e3",
                "Was the author of 'Pride and Prejudice' alive when the Eiffel Tower was completed?",
                &["No", "Yes"],
                0,
            ),
            cot: "'Pride and Prejudice' was written by Jane Austen. Jane Austen died in 1817. The Eiffel Tower was completed in 1889, which is after 1817. So she was not alive when it was completed.",
            steps: &[
                ("Who wrote 'Pride and Prejudice'?", "Jane Austen"),
                ("In what year did {1} die?", "1817"),
                ("In what year was the Eiffel Tower completed?", "1889"),
                ("Is the year {3} earlier than the year {2}?", "No"),
            ],
        },
        Exemplar {
            question: q(
                "e4",
                "A train travels 180 km in 2 hours and then 120 km in 1 hour. What is its average speed over the whole trip?",
                &["90 km/h", "95 km/h", "100 km/h", "120 km/h"],
                2,
            ),
            cot: "The train covers 180 + 120 = 300 km in total. The trip takes 2 + 1 = 3 hours. Its average speed is 300 ÷ 3 = 100 km/h.",
            steps: &[
                ("What is 180 km plus 120 km?", "300 km"),
                ("What is 2 hours plus 1 hour?", "3 hours"),
                ("What speed covers {1} in {2}?", "100 km/h"),
            ],
        },
        Exemplar {
            question: q(
                "e5",
                "Which gas do plants take in from the air to make sugar during photosynthesis?",
                &["Oxygen", "Carbon dioxide", "Nitrogen", "Helium"],
                1,
            ),
            cot: "In photosynthesis, plants use light to turn carbon dioxide and water into sugar, and they release oxygen. The gas they take in from the air to make sugar is therefore carbon dioxide.",
            steps: &[
                ("What do plants make sugar from in photosynthesis?", "carbon dioxide and water"),
                ("Which of oxygen, carbon dioxide, nitrogen and helium is one of {1}?", "carbon dioxide"),
            ],
        },
        Exemplar {
            question: q(
                "e6",
                "Could a person born in 1990 have voted in the 2000 United States presidential election?",
                &["No", "Yes"],
                0,
            ),
            cot: "A person born in 1990 was about 10 years old in 2000. The minimum voting age in United States federal elections is 18. A 10-year-old could not have voted.",
            steps: &[
                ("How old was a person born in 1990 in the year 2000?", "about 10 years old"),
                ("What is the minimum voting age in United States federal elections?", "18"),
                ("Can a person who is {1} vote where the minimum voting age is {2}?", "No"),
            ],
        },
        Exemplar {
            question: q(
                "e7",
                "All bloops are razzies and all razzies are lazzies. Which statement must be true?",
                &[
                    "All lazzies are bloops",
                    "No bloops are lazzies",
                    "Some razzies are not bloops",
                    "All bloops are lazzies",
                ],
                3,
            ),
            cot: "Every bloop is a razzie, and every razzie is a lazzie, so every bloop is a lazzie. Nothing is said about whether lazzies are bloops or whether some razzies are not bloops. So the statement that must be true is that all bloops are lazzies.",
            steps: &[
                ("If all bloops are razzies and all razzies are lazzies, what is every bloop?", "a lazzie"),
                ("If every bloop is {1}, are all bloops lazzies?", "Yes"),
            ],
        },
        Exemplar {
            question: q(
                "e8",
                "What is the capital of the country where the Colosseum stands?",
                &["Athens", "Madrid", "Rome", "Paris"],
                2,
            ),
            cot: "The Colosseum stands in Italy. The capital of Italy is Rome.",
            steps: &[
                ("In which country does the Colosseum stand?", "Italy"),
                ("What is the capital of {1}?", "Rome"),
            ],
        },
        Exemplar {
            question: q(
                "e9",
                "A shirt costs $40 and is on sale for 25% off. What is the sale price?",
                &["$25", "$30", "$35", "$15"],
                1,
            ),
            cot: "25% of $40 is $10. Taking $10 off $40 leaves $30.",
            steps: &[
                ("What is 25% of $40?", "$10"),
                ("What is $40 minus {1}?", "$30"),
            ],
        },
        Exemplar {
            question: q(
                "e10",
                "Water at sea level is heated from 20 °C to 100 °C. What happens if the heating continues?",
                &[
                    "It boils and turns into steam",
                    "It freezes",
                    "It stays liquid and keeps getting hotter",
                    "It turns into ice",
                ],
                0,
            ),
            cot: "At sea level water boils at 100 °C. Heating it further makes it boil and turn into steam rather than get hotter as a liquid.",
            steps: &[
                ("At what temperature does water boil at sea level?", "100 °C"),
                ("What happens to water at sea level at {1} when it keeps being heated?", "it boils and turns into steam"),
            ],
        },
        Exemplar {
            question: q(
                "e11",
                "Which of these events happened first?",
                &[
                    "The first Moon landing",
                    "The fall of the Berlin Wall",
                    "The end of the First World War",
                    "The invention of the World Wide Web",
                ],
                2,
            ),
            cot: "The first Moon landing was in 1969. The Berlin Wall fell in 1989. The First World War ended in 1918. The World Wide Web was invented in 1989. The earliest of these is 1918, the end of the First World War.",
            steps: &[
                ("In what year was the first Moon landing?", "1969"),
                ("In what year did the Berlin Wall fall?", "1989"),
                ("In what year did the First World War end?", "1918"),
                ("In what year was the World Wide Web invented?", "1989"),
                ("Which is the earliest of the years {1}, {2}, {3} and {4}?", "1918"),
            ],
        },
        Exemplar {
            question: q(
                "e12",
                "A rectangle is 8 cm long and 5 cm wide. What is its perimeter?",
                &["13 cm", "40 cm", "21 cm", "26 cm"],
                3,
            ),
            cot: "The perimeter is twice the length plus twice the width. 8 + 5 = 13 cm, and 2 × 13 = 26 cm.",
            steps: &[
                ("What is 8 cm plus 5 cm?", "13 cm"),
                ("What is twice {1}?", "26 cm"),
            ],
        },
        Exemplar {
            question: q(
                "e13",
                "Is a tomato a fruit in the botanical sense?",
                &["No", "Yes"],
                1,
            ),
            cot: "In botany, a fruit is the part of a flowering plant that grows from the flower and holds the seeds. A tomato grows from the flower of the tomato plant and holds its seeds. So botanically it is a fruit.",
            steps: &[
                ("What is a fruit in the botanical sense?", "the part of a flowering plant that grows from the flower and holds the seeds"),
                ("Does a tomato grow from a flower and hold seeds?", "Yes"),
            ],
        },
        Exemplar {
            question: q(
                "e14",
                "Sam is taller than Alex, and Alex is taller than Jo. Who is the shortest?",
                &["Jo", "Alex", "Sam"],
                0,
            ),
            cot: "Sam is taller than Alex, and Alex is taller than Jo. So from tallest to shortest they are Sam, Alex, Jo, and Jo is the shortest.",
            steps: &[
                ("If Sam is taller than Alex and Alex is taller than Jo, what is their order from tallest to shortest?", "Sam, then Alex, then Jo"),
                ("Who is last in the order {1}?", "Jo"),
            ],
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fourteen_exemplars_with_letters_spread_over_a_to_d() {
        let ex = all();
        assert_eq!(ex.len(), 14);
        let mut count = [0; 4];
        for e in &ex {
            count[e.question.answer] += 1;
            assert!(e.question.validate().is_ok(), "{}", e.question.id);
        }
        assert_eq!(count, [4, 4, 3, 3]);
    }

    #[test]
    fn references_point_back_and_fill_in() {
        for e in all() {
            for i in 0..e.steps.len() {
                for k in e.uses(i) {
                    assert!(
                        k >= 1 && k <= i,
                        "{} step {}: {{{k}}}",
                        e.question.id,
                        i + 1
                    );
                }
                assert!(!e.filled(i).contains('{'), "{}", e.filled(i));
            }
        }
        let e3 = &all()[2];
        assert_eq!(e3.filled(1), "In what year did Jane Austen die?");
        assert_eq!(e3.filled(3), "Is the year 1889 earlier than the year 1817?");
        assert_eq!(e3.uses(3), vec![3, 2]);
        assert_eq!(
            fill("x {2} {9} {a}", |k| (k == 2).then(|| "B".into())),
            "x B {9} {a}"
        );
    }
}
