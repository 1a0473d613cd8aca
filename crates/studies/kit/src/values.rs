//! Option values several studies share.

use std::path::PathBuf;

use shammie_engine::OptionValue;

/// One data file or folder, or the study's built-in data (`built-in`, the default).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct DataPath(pub Option<PathBuf>);

impl OptionValue for DataPath {
    fn parse_option(text: &str) -> Result<Self, String> {
        match text.trim() {
            "" | "built-in" => Ok(DataPath(None)),
            t => Ok(DataPath(Some(t.into()))),
        }
    }
    fn show_option(&self) -> String {
        match &self.0 {
            Some(p) => p.display().to_string(),
            None => "built-in".into(),
        }
    }
}

/// Comma-separated data files, or the study's built-in data (`built-in`, the default).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct DataFiles(pub Vec<PathBuf>);

impl OptionValue for DataFiles {
    fn parse_option(text: &str) -> Result<Self, String> {
        match text.trim() {
            "" | "built-in" => Ok(DataFiles(Vec::new())),
            t => Ok(DataFiles(
                t.split(',')
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(PathBuf::from)
                    .collect(),
            )),
        }
    }
    fn show_option(&self) -> String {
        if self.0.is_empty() {
            return "built-in".into();
        }
        self.0
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(",")
    }
}
