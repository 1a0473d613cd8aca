//! The capability test and the training questions: the built-in AQuA-RAT (its dev split
//! for training, its test split measured), or a user's multiple-choice file in any format
//! `shammie_mcq::formats` reads, cut into the three pools by a fixed seed.
//!
//! Pools, disjoint:
//! - `eval`: the capability test, measured at every stage with and without the trigger;
//! - `train`: the sandbagging training questions;
//! - `demos`: the questions of the demonstrations elicitation (`elicitation=demonstrations`).
//!
//! A user file is shuffled with a seed of its own (not the run's), so the same file and
//! sizes always give the same pools; the built-in test split is measured in file order.

use std::path::Path;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use shammie_engine::DataError;
use shammie_mcq::formats::{self, Format};
use shammie_mcq::mcq::McQuestion;

/// The three pools.
#[derive(Debug, Clone, PartialEq)]
pub struct Pools {
    pub eval: Vec<McQuestion>,
    pub train: Vec<McQuestion>,
    pub demos: Vec<McQuestion>,
    /// Where the questions came from, for the report.
    pub source: String,
}

/// The seed pools are cut with (a constant: the pools do not depend on the run's seed).
const POOL_SEED: u64 = 0x5a4d_ba9e;

fn builtin(name: &str, text: &str) -> Result<Vec<McQuestion>, DataError> {
    Ok(formats::load_str(name, text, Some(Format::Aqua), "aqua")?.questions)
}

/// The pools of `sizes` = (eval, train, demos) questions from `data` (or the built-in
/// AQuA splits); too few questions is an error saying how many there are.
pub fn pools(
    data: Option<&Path>,
    format: &str,
    sizes: (usize, usize, usize),
) -> Result<Pools, DataError> {
    let (n_eval, n_train, n_demos) = sizes;
    let short = |path: String, have: usize, want: usize, what: &str| {
        DataError::File {
        path,
        message: format!(
            "{have} questions, but {want} are needed ({what}); lower eval_questions, train_questions or demonstrations"
        ),
    }
    };
    match data {
        None => {
            let test = builtin(shammie_data::aqua::TEST_NAME, shammie_data::aqua::TEST)?;
            let mut dev = builtin(shammie_data::aqua::DEV_NAME, shammie_data::aqua::DEV)?;
            if test.len() < n_eval {
                return Err(short(
                    shammie_data::aqua::TEST_NAME.into(),
                    test.len(),
                    n_eval,
                    "eval_questions",
                ));
            }
            if dev.len() < n_train + n_demos {
                return Err(short(
                    shammie_data::aqua::DEV_NAME.into(),
                    dev.len(),
                    n_train + n_demos,
                    "train_questions + demonstrations",
                ));
            }
            dev.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(POOL_SEED));
            let demos = dev.split_off(n_train);
            Ok(Pools {
                eval: test.into_iter().take(n_eval).collect(),
                train: dev,
                demos: demos.into_iter().take(n_demos).collect(),
                source: "AQuA-RAT (built in): test split measured, dev split trained on".into(),
            })
        }
        Some(p) => {
            let forced = Format::from_option(format)?;
            let name = p
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "data".into());
            let mut all = formats::load(p, forced, &name)?.questions;
            let need = n_eval + n_train + n_demos;
            if all.len() < need {
                return Err(short(
                    p.display().to_string(),
                    all.len(),
                    need,
                    "eval_questions + train_questions + demonstrations",
                ));
            }
            all.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(POOL_SEED));
            let mut rest = all.split_off(n_eval);
            let demos = rest.split_off(n_train);
            Ok(Pools {
                eval: all,
                train: rest,
                demos: demos.into_iter().take(n_demos).collect(),
                source: format!("{} (split into pools by a fixed seed)", p.display()),
            })
        }
    }
}
