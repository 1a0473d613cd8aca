//! Typed access to a task's `--set key=value` options, with defaults and clear errors.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use crate::EngineError;

/// How `shammie list` describes one option.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct OptionSpec {
    pub key: &'static str,
    /// The default, as it would be written after `--set key=`.
    pub default: String,
    pub help: &'static str,
}

/// A value a task option can hold: read from the text of `--set key=value`, and shown
/// (as a default) in `shammie list`. Implemented for numbers, `bool`, `String`,
/// `PathBuf`, comma-separated lists, `Option<T>` (empty or `none`: `None`), and the
/// choice enums declared with [`option_choice!`](crate::option_choice).
pub trait OptionValue: Sized {
    fn parse_option(text: &str) -> Result<Self, String>;
    fn show_option(&self) -> String;
}

macro_rules! option_from_str {
    ($($t:ty),*) => {$(
        impl OptionValue for $t {
            fn parse_option(text: &str) -> Result<Self, String> {
                text.trim().parse().map_err(|e| format!("{e}"))
            }
            fn show_option(&self) -> String {
                self.to_string()
            }
        }
    )*};
}
option_from_str!(u8, u16, u32, u64, usize, i32, i64);

impl OptionValue for f64 {
    fn parse_option(text: &str) -> Result<Self, String> {
        let v: f64 = text.trim().parse().map_err(|e| format!("{e}"))?;
        if v.is_finite() {
            Ok(v)
        } else {
            Err("expected a finite number".into())
        }
    }
    /// Always with a decimal point (`1.0`), so a number reads as one.
    fn show_option(&self) -> String {
        format!("{self:?}")
    }
}

impl OptionValue for bool {
    fn parse_option(text: &str) -> Result<Self, String> {
        match text.trim() {
            "true" | "yes" | "1" | "on" => Ok(true),
            "false" | "no" | "0" | "off" => Ok(false),
            _ => Err("expected true or false".into()),
        }
    }
    fn show_option(&self) -> String {
        self.to_string()
    }
}

impl OptionValue for String {
    fn parse_option(text: &str) -> Result<Self, String> {
        Ok(text.to_string())
    }
    fn show_option(&self) -> String {
        self.clone()
    }
}

impl OptionValue for std::path::PathBuf {
    fn parse_option(text: &str) -> Result<Self, String> {
        if text.trim().is_empty() {
            return Err("expected a path".into());
        }
        Ok(text.trim().into())
    }
    fn show_option(&self) -> String {
        self.display().to_string()
    }
}

/// A comma-separated list (items trimmed, empty items dropped).
impl OptionValue for Vec<String> {
    fn parse_option(text: &str) -> Result<Self, String> {
        Ok(text
            .split(',')
            .map(str::trim)
            .filter(|x| !x.is_empty())
            .map(str::to_string)
            .collect())
    }
    fn show_option(&self) -> String {
        self.join(",")
    }
}

/// Empty text or `none` is `None`.
impl<T: OptionValue> OptionValue for Option<T> {
    fn parse_option(text: &str) -> Result<Self, String> {
        match text.trim() {
            "" | "none" => Ok(None),
            t => T::parse_option(t).map(Some),
        }
    }
    fn show_option(&self) -> String {
        match self {
            Some(v) => v.show_option(),
            None => "none".into(),
        }
    }
}

/// A set of options that can be read from `--set` values: a task's whole
/// configuration, or a group of options several tasks share (each with its own
/// defaults). Implemented by [`task_options!`](crate::task_options).
pub trait OptionGroup: Sized + Default {
    /// The options, with this value's fields as their defaults, for `shammie list`.
    fn specs(&self) -> Vec<OptionSpec>;
    /// Overwrites the fields whose options are set (others keep their value).
    fn read_into(&mut self, o: &Options) -> Result<(), EngineError>;
    /// The options with the declared defaults.
    fn options() -> Vec<OptionSpec> {
        Self::default().specs()
    }
    /// Reads every option over the defaults and rejects keys nothing declares.
    fn from_options(o: Options) -> Result<Self, EngineError> {
        let mut v = Self::default();
        v.read_into(&o)?;
        o.finish(&Self::options())?;
        Ok(v)
    }
}

/// Declares a task's options once: the struct (serialisable, for run.json), its
/// defaults, the option table `shammie list` shows, and typed reading of `--set` with
/// an error naming the option. Each field's doc comment is its help text. Groups of
/// options shared between tasks are included after the fields (flattened), optionally
/// with this task's own defaults for them.
///
/// ```text
/// shammie_engine::task_options! {
///     /// What `agent-loop/arithmetic` takes.
///     pub struct Config {
///         /// most model turns per episode
///         pub max_turns: u32 = 6,
///         /// append real executions to this file
///         pub audit: Option<PathBuf> = None,
///     }
///     include { pub answer: AnswerOptions = AnswerOptions { samples: 20, ..Default::default() } }
/// }
/// ```
#[macro_export]
macro_rules! task_options {
    (@default $gty:ty) => { <$gty as Default>::default() };
    (@default $gty:ty, $e:expr) => { $e };
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $(
                $(#[doc = $help:literal])+
                $fvis:vis $field:ident : $ty:ty $([$lo:literal ..= $hi:literal])? = $default:expr
            ),* $(,)?
        }
        $(include { $($gvis:vis $group:ident : $gty:ty $(= $gdef:expr)?),* $(,)? })?
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, serde::Serialize)]
        $vis struct $name {
            $( $(#[doc = $help])+ $fvis $field: $ty, )*
            $($( #[serde(flatten)] $gvis $group: $gty, )*)?
        }

        impl Default for $name {
            fn default() -> Self {
                Self {
                    $( $field: $default, )*
                    $($( $group: $crate::task_options!(@default $gty $(, $gdef)?), )*)?
                }
            }
        }

        impl $crate::OptionGroup for $name {
            fn specs(&self) -> Vec<$crate::OptionSpec> {
                #[allow(unused_mut)]
                let mut v = vec![$(
                    $crate::OptionSpec {
                        key: stringify!($field),
                        default: $crate::OptionValue::show_option(&self.$field),
                        help: concat!($($help),+).trim_ascii(),
                    },
                )*];
                $($( v.extend($crate::OptionGroup::specs(&self.$group)); )*)?
                v
            }
            fn read_into(&mut self, o: &$crate::Options) -> Result<(), $crate::EngineError> {
                $(
                    if let Some(text) = o.str(stringify!($field)) {
                        let v = <$ty as $crate::OptionValue>::parse_option(text)
                            .map_err(|e| o.invalid(stringify!($field), text, &e))?;
                        $(
                            if !($lo..=$hi).contains(&v) {
                                return Err(o.invalid(
                                    stringify!($field),
                                    text,
                                    &format!("must be between {} and {}", $lo, $hi),
                                ));
                            }
                        )?
                        self.$field = v;
                    }
                )*
                $($( $crate::OptionGroup::read_into(&mut self.$group, o)?; )*)?
                Ok(())
            }
        }
    };
}

/// Declares an enum whose values are chosen by name in an option (and serialised by
/// that name).
#[macro_export]
macro_rules! option_choice {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident { $( $(#[$vm:meta])* $variant:ident = $text:literal ),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        $vis enum $name { $( $(#[$vm])* $variant ),+ }

        impl $crate::OptionValue for $name {
            fn parse_option(text: &str) -> Result<Self, String> {
                match text.trim() {
                    $( $text => Ok(Self::$variant), )+
                    _ => Err(format!("expected one of {}", [$($text),+].join(", "))),
                }
            }
            fn show_option(&self) -> String {
                match self { $( Self::$variant => $text.to_string(), )+ }
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&$crate::OptionValue::show_option(self))
            }
        }
    };
}

/// The options given for one task. Every key must be read by the task's constructor;
/// [`Options::finish`] rejects the ones nobody asked for (typos).
pub struct Options {
    map: BTreeMap<String, String>,
    used: RefCell<BTreeSet<String>>,
    task: String,
}

impl Options {
    pub fn new(task: impl Into<String>, map: BTreeMap<String, String>) -> Self {
        Self {
            map,
            used: RefCell::default(),
            task: task.into(),
        }
    }

    pub fn str(&self, key: &str) -> Option<&str> {
        self.used.borrow_mut().insert(key.to_string());
        self.map.get(key).map(String::as_str)
    }

    /// The error for a value of `key` that does not parse.
    pub fn invalid(&self, key: &str, value: &str, why: &str) -> EngineError {
        EngineError::Config(format!("{}: option {key}={value:?}: {why}", self.task))
    }

    /// Parses `key` as `T`, or returns `default` when it is not set.
    pub fn parse<T: FromStr>(&self, key: &str, default: T) -> Result<T, EngineError>
    where
        T::Err: std::fmt::Display,
    {
        match self.str(key) {
            None => Ok(default),
            Some(v) => v.trim().parse().map_err(|e| {
                EngineError::Config(format!("{}: option {key}={v:?}: {e}", self.task))
            }),
        }
    }

    /// One of a fixed set of values.
    pub fn choice<'a>(
        &self,
        key: &str,
        allowed: &[&'a str],
        default: &'a str,
    ) -> Result<&'a str, EngineError> {
        match self.str(key) {
            None => Ok(default),
            Some(v) => allowed
                .iter()
                .copied()
                .find(|a| *a == v.trim())
                .ok_or_else(|| {
                    EngineError::Config(format!(
                        "{}: option {key}={v:?}: expected one of {}",
                        self.task,
                        allowed.join(", ")
                    ))
                }),
        }
    }

    /// Fails on options that no part of the task read.
    pub fn finish(self, specs: &[OptionSpec]) -> Result<(), EngineError> {
        let used = self.used.into_inner();
        let unknown: Vec<&String> = self.map.keys().filter(|k| !used.contains(*k)).collect();
        if unknown.is_empty() {
            return Ok(());
        }
        let known: Vec<&str> = specs.iter().map(|s| s.key).collect();
        Err(EngineError::Config(format!(
            "{}: unknown option{} {}; this task takes: {}",
            self.task,
            if unknown.len() > 1 { "s" } else { "" },
            unknown
                .iter()
                .map(|k| k.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            known.join(", ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(kv: &[(&str, &str)]) -> Options {
        Options::new(
            "s/t",
            kv.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn typed_values_defaults_and_errors() {
        let o = opts(&[("n", "5"), ("mode", "fast")]);
        assert_eq!(o.parse("n", 1u32).unwrap(), 5);
        assert_eq!(o.parse("m", 7u32).unwrap(), 7);
        assert_eq!(o.choice("mode", &["fast", "slow"], "slow").unwrap(), "fast");
        o.finish(&[]).unwrap();
        let o = opts(&[("n", "five")]);
        let e = o.parse("n", 1u32).unwrap_err().to_string();
        assert!(e.contains("n=\"five\""), "{e}");
        let o = opts(&[("mode", "medium")]);
        assert!(o
            .choice("mode", &["fast", "slow"], "slow")
            .unwrap_err()
            .to_string()
            .contains("fast, slow"));
    }

    #[test]
    fn unknown_keys_are_rejected_with_the_known_list() {
        let o = opts(&[("smaples", "3")]);
        let _ = o.parse("samples", 1u32);
        let e = o
            .finish(&[OptionSpec {
                key: "samples",
                default: "1".into(),
                help: "",
            }])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("unknown option smaples") && e.contains("takes: samples"),
            "{e}"
        );
    }
}

#[cfg(test)]
#[allow(unreachable_pub)]
mod macro_tests {
    use super::*;
    use std::path::PathBuf;

    crate::option_choice! {
        pub enum Mode { Fast = "fast", Slow = "slow" }
    }

    crate::task_options! {
        pub struct Shared {
            /// how many
            pub samples: u32 [1 ..= 100] = 10,
        }
    }

    crate::task_options! {
        /// Another task's options, with its own default for the shared group.
        pub struct Other {
            /// a flag
            pub flag: bool = false,
        }
        include { pub shared: Shared = Shared { samples: 20 } }
    }

    crate::task_options! {
        /// A task's options.
        pub struct Conf {
            /// the mode
            pub mode: Mode = Mode::Slow,
            /// a file,
            /// over two lines
            pub file: Option<PathBuf> = None,
            /// names
            pub names: Vec<String> = vec!["a".into()],
        }
        include { pub shared: Shared }
    }

    fn opts(kv: &[(&str, &str)]) -> Options {
        Options::new(
            "s/t",
            kv.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn one_declaration_gives_defaults_table_parsing_and_errors() {
        let specs = Conf::options();
        let keys: Vec<&str> = specs.iter().map(|s| s.key).collect();
        assert_eq!(keys, ["mode", "file", "names", "samples"]);
        assert_eq!(specs[0].default, "slow");
        assert_eq!(specs[1].default, "none");
        assert_eq!(specs[1].help, "a file, over two lines");
        assert_eq!(specs[3].default, "10");
        let c = Conf::from_options(opts(&[
            ("mode", "fast"),
            ("samples", "3"),
            ("names", "x, y,"),
        ]))
        .unwrap();
        assert_eq!(c.mode, Mode::Fast);
        assert_eq!(c.shared.samples, 3);
        assert_eq!(c.names, ["x", "y"]);
        let j = serde_json::to_value(&c).unwrap();
        assert_eq!(
            j,
            serde_json::json!({"mode": "fast", "file": null, "names": ["x", "y"], "samples": 3})
        );
        let e = Conf::from_options(opts(&[("mode", "medium")]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("mode=\"medium\"") && e.contains("fast, slow"),
            "{e}"
        );
        let e = Conf::from_options(opts(&[("sample", "3")]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("unknown option sample") && e.contains("samples"),
            "{e}"
        );
        assert_eq!(
            Conf::from_options(opts(&[("file", "none")])).unwrap().file,
            None
        );
        // A group's defaults are the including task's.
        assert_eq!(Other::options()[1].default, "20");
        assert_eq!(Other::from_options(opts(&[])).unwrap().shared.samples, 20);
        assert_eq!(
            Other::from_options(opts(&[("samples", "4")]))
                .unwrap()
                .shared
                .samples,
            4
        );
    }
}
