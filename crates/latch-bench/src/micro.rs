//! `latch-bench micro-report`: the ratios of latch's micro-benchmarks to the
//! bare primitive measured in the same `cargo bench` run.
//!
//! Each criterion group in `crates/latch/benches/micro.rs` measures functions
//! `latch` and `bare` (and for serialization `floor`, the bare JSON plus one
//! MAC) at the same parameter; this reads criterion's
//! `GROUP/FUNCTION/PARAM/new/estimates.json` and prints median times and ratios.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

/// The flags of `latch-bench micro-report`.
#[derive(Debug, clap::Args)]
pub struct MicroArgs {
    /// criterion's output (default: `$CARGO_TARGET_DIR/criterion`).
    #[arg(long)]
    criterion_dir: Option<PathBuf>,
}

/// Median time (ns) of every `group/function/param` found under `dir`.
///
/// # Errors
/// When the directory cannot be read or an estimates file is malformed.
pub fn read(dir: &Path) -> anyhow::Result<BTreeMap<(String, String, String), f64>> {
    let mut out = BTreeMap::new();
    for group in subdirs(dir)? {
        for function in subdirs(&group)? {
            for param in subdirs(&function)? {
                let file = param.join("new").join("estimates.json");
                if !file.exists() {
                    continue;
                }
                let json: serde_json::Value =
                    serde_json::from_str(&std::fs::read_to_string(&file)?)
                        .with_context(|| file.display().to_string())?;
                let ns = json["median"]["point_estimate"]
                    .as_f64()
                    .with_context(|| format!("{}: no median", file.display()))?;
                out.insert((name(&group), name(&function), name(&param)), ns);
            }
        }
    }
    Ok(out)
}

fn subdirs(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| {
            format!(
                "reading {} (run `cargo bench -p latch` first)",
                dir.display()
            )
        })?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir() && name(p) != "report")
        .collect();
    v.sort();
    Ok(v)
}

fn name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The Markdown table: one row per group and parameter that has `latch` and `bare`.
pub fn table(est: &BTreeMap<(String, String, String), f64>) -> String {
    let mut out = String::from(
        "| benchmark | input | latch | bare primitive | latch / bare | JSON+MAC floor | latch / floor |\n\
         |---|---|---:|---:|---:|---:|---:|\n",
    );
    for ((group, function, param), &latch) in est {
        if function != "latch" {
            continue;
        }
        let key = |f: &str| (group.clone(), f.to_owned(), param.clone());
        let Some(&bare) = est.get(&key("bare")) else {
            continue;
        };
        let (floor, floor_ratio) = est
            .get(&key("floor"))
            .map_or(("-".to_owned(), "-".to_owned()), |&f| {
                (ns(f), format!("{:.2}", latch / f))
            });
        out.push_str(&format!(
            "| {group} | {param} | {} | {} | {:.2} | {floor} | {floor_ratio} |\n",
            ns(latch),
            ns(bare),
            latch / bare
        ));
    }
    out
}

fn ns(v: f64) -> String {
    if v >= 1000.0 {
        format!("{:.2} µs", v / 1000.0)
    } else {
        format!("{v:.0} ns")
    }
}

/// Print the report for `--criterion-dir` (default `$CARGO_TARGET_DIR/criterion`).
///
/// # Errors
/// When criterion's output cannot be read.
pub fn run(args: &MicroArgs) -> anyhow::Result<String> {
    let dir = args.criterion_dir.clone().unwrap_or_else(|| {
        std::env::var_os("CARGO_TARGET_DIR")
            .map_or_else(|| PathBuf::from("target"), PathBuf::from)
            .join("criterion")
    });
    Ok(table(&read(&dir)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_criterion_layout_and_pairs_latch_with_bare() {
        let dir = std::env::temp_dir().join(format!("latch-bench-micro-{}", std::process::id()));
        let write = |g: &str, f: &str, p: &str, ns: f64| {
            let d = dir.join(g).join(f).join(p).join("new");
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(
                d.join("estimates.json"),
                format!(
                    r#"{{"median": {{"point_estimate": {ns}}}, "mean": {{"point_estimate": 1}}}}"#
                ),
            )
            .unwrap();
        };
        write("sign_verify", "latch", "1KiB", 3000.0);
        write("sign_verify", "bare", "1KiB", 2500.0);
        write("format_encode", "latch", "record", 900.0);
        write("format_encode", "bare", "record", 300.0);
        write("format_encode", "floor", "record", 800.0);
        write("lonely", "latch", "x", 1.0);
        std::fs::create_dir_all(dir.join("report")).unwrap();
        let est = read(&dir).unwrap();
        let text = table(&est);
        std::fs::remove_dir_all(&dir).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert_eq!(
            lines[2],
            "| format_encode | record | 900 ns | 300 ns | 3.00 | 800 ns | 1.12 |"
        );
        assert_eq!(
            lines[3],
            "| sign_verify | 1KiB | 3.00 µs | 2.50 µs | 1.20 | - | - |"
        );
    }
}
