//! A small `--flag value` command-line reader.

use std::collections::BTreeMap;
use std::str::FromStr;

use anyhow::{Context as _, bail};

/// Flags given as `--name value`.
#[derive(Debug, Default)]
pub struct Args(BTreeMap<String, String>);

impl Args {
    /// Read `--name value` pairs; `allowed` lists the names this command knows.
    ///
    /// # Errors
    /// For an unknown flag, a flag without a value, or a stray argument.
    pub fn parse(args: &[String], allowed: &[&str]) -> anyhow::Result<Self> {
        let mut map = BTreeMap::new();
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let Some(name) = arg.strip_prefix("--") else {
                bail!("unexpected argument {arg:?}");
            };
            if !allowed.contains(&name) {
                bail!(
                    "unknown flag --{name}; this command takes --{}",
                    allowed.join(", --")
                );
            }
            let value = it
                .next()
                .with_context(|| format!("--{name} needs a value"))?;
            map.insert(name.to_owned(), value.clone());
        }
        Ok(Self(map))
    }

    /// The value of `--name` parsed, or `default`.
    ///
    /// # Errors
    /// When the value does not parse.
    pub fn get<T: FromStr>(&self, name: &str, default: T) -> anyhow::Result<T>
    where
        T::Err: std::fmt::Display,
    {
        match self.0.get(name) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|e| anyhow::anyhow!("--{name} {v:?}: {e}")),
        }
    }

    /// The raw value of `--name`.
    pub fn raw(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// The comma-separated list of `--name`, each item parsed, or `default`.
    ///
    /// # Errors
    /// When an item does not parse.
    pub fn list<T>(
        &self,
        name: &str,
        default: Vec<T>,
        parse: impl Fn(&str) -> anyhow::Result<T>,
    ) -> anyhow::Result<Vec<T>> {
        match self.0.get(name) {
            None => Ok(default),
            Some(v) => v
                .split(',')
                .filter(|s| !s.is_empty())
                .map(|s| parse(s.trim()))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn reads_values_lists_and_defaults() {
        let a = Args::parse(
            &args(&["--reps", "5", "--sizes", "10,20"]),
            &["reps", "sizes", "duration"],
        )
        .unwrap();
        assert_eq!(a.get("reps", 3u32).unwrap(), 5);
        assert_eq!(a.get("duration", 4u64).unwrap(), 4);
        let sizes = a.list("sizes", vec![], |s| Ok(s.parse::<u64>()?)).unwrap();
        assert_eq!(sizes, vec![10, 20]);
    }

    #[test]
    fn refuses_unknown_flags_missing_values_and_bad_numbers() {
        let err = Args::parse(&args(&["--nope", "1"]), &["reps"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown flag --nope; this command takes --reps"
        );
        assert!(Args::parse(&args(&["--reps"]), &["reps"]).is_err());
        assert!(Args::parse(&args(&["reps"]), &["reps"]).is_err());
        let a = Args::parse(&args(&["--reps", "x"]), &["reps"]).unwrap();
        assert!(a.get("reps", 3u32).is_err());
    }
}
