//! Medians, ratios to a baseline measured in the same repetition, and the
//! Markdown table the load benchmark prints.

use crate::wrk::Sample;

/// The median of `values` (mean of the middle two for an even count); `NaN`
/// when empty.
pub fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    }
}

/// Per-repetition ratios `a[i] / b[i]` (pairs measured in the same repetition).
pub fn paired_ratios(a: &[f64], b: &[f64]) -> Vec<f64> {
    a.iter().zip(b).map(|(x, y)| x / y).collect()
}

/// One row of results: every repetition of one configuration in one mode,
/// with the baseline's samples from the same repetitions.
#[derive(Debug, Clone)]
pub struct Row {
    /// Configuration name.
    pub config: String,
    /// Mode name.
    pub mode: String,
    /// This configuration's samples, one per repetition.
    pub samples: Vec<Sample>,
    /// The baseline's samples, same repetitions in the same order.
    pub baseline: Vec<Sample>,
}

impl Row {
    /// Median requests/s.
    pub fn rps(&self) -> f64 {
        median(&self.samples.iter().map(|s| s.rps).collect::<Vec<_>>())
    }

    /// Median p50 latency (µs).
    pub fn p50(&self) -> f64 {
        median(&self.samples.iter().map(|s| s.p50_us).collect::<Vec<_>>())
    }

    /// Median p99 latency (µs).
    pub fn p99(&self) -> f64 {
        median(&self.samples.iter().map(|s| s.p99_us).collect::<Vec<_>>())
    }

    /// Errors summed over repetitions.
    pub fn errors(&self) -> u64 {
        self.samples.iter().map(|s| s.errors).sum()
    }

    /// Median of the per-repetition requests/s ratios to the baseline.
    pub fn ratio(&self) -> f64 {
        let a: Vec<f64> = self.samples.iter().map(|s| s.rps).collect();
        let b: Vec<f64> = self.baseline.iter().map(|s| s.rps).collect();
        median(&paired_ratios(&a, &b))
    }

    /// Median of the per-repetition p99 ratios to the baseline.
    pub fn p99_ratio(&self) -> f64 {
        let a: Vec<f64> = self.samples.iter().map(|s| s.p99_us).collect();
        let b: Vec<f64> = self.baseline.iter().map(|s| s.p99_us).collect();
        median(&paired_ratios(&a, &b))
    }

    /// Median server CPU time per request (µs).
    pub fn cpu(&self) -> f64 {
        median(&self.samples.iter().map(|s| s.cpu_us).collect::<Vec<_>>())
    }

    /// Median of the per-repetition ratios of server CPU per request to the
    /// baseline's (above 1: dearer than bare).
    pub fn cpu_ratio(&self) -> f64 {
        let a: Vec<f64> = self.samples.iter().map(|s| s.cpu_us).collect();
        let b: Vec<f64> = self.baseline.iter().map(|s| s.cpu_us).collect();
        median(&paired_ratios(&a, &b))
    }
}

/// A target a row is judged against, with its verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// What was required, e.g. `≥0.90, p99 ≤2x`.
    pub target: String,
    /// Whether it was met.
    pub met: bool,
}

impl Verdict {
    /// The table cell: `target: met` / `target: MISSED`.
    pub fn cell(&self) -> String {
        format!(
            "{}: {}",
            self.target,
            if self.met { "met" } else { "MISSED" }
        )
    }
}

/// Microseconds as a short human value: `812 µs`, `1.10 ms`, `2.00 s`.
pub fn fmt_us(us: f64) -> String {
    if us.is_nan() {
        "-".to_owned()
    } else if us < 1000.0 {
        format!("{us:.0} µs")
    } else if us < 1e6 {
        format!("{:.2} ms", us / 1e3)
    } else {
        format!("{:.2} s", us / 1e6)
    }
}

/// CPU microseconds per request with one decimal: `12.3 µs`.
pub fn fmt_cpu(us: f64) -> String {
    if us.is_nan() {
        "-".to_owned()
    } else {
        format!("{us:.1} µs")
    }
}

/// The load table in Markdown; `verdict(row)` gives each row's target, if any.
pub fn table(rows: &[Row], verdict: impl Fn(&Row) -> Option<Verdict>) -> String {
    let mut out = String::from(
        "| mode | configuration | requests/s | p50 | p99 | errors | ratio to bare | p99 / bare | CPU / request | CPU / bare | target |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n",
    );
    for row in rows {
        let target = verdict(row).map_or_else(|| "-".to_owned(), |v| v.cell());
        out.push_str(&format!(
            "| {} | {} | {:.0} | {} | {} | {} | {:.2} | {:.2} | {} | {:.2} | {} |\n",
            row.mode,
            row.config,
            row.rps(),
            fmt_us(row.p50()),
            fmt_us(row.p99()),
            row.errors(),
            row.ratio(),
            row.p99_ratio(),
            fmt_cpu(row.cpu()),
            row.cpu_ratio(),
            target
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(rps: f64, p99: f64) -> Sample {
        Sample {
            rps,
            p50_us: p99 / 2.0,
            p99_us: p99,
            errors: 1,
            requests: 0,
            cpu_us: rps / 10.0,
        }
    }

    #[test]
    fn median_odd_even_and_empty() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn ratio_is_median_of_paired_ratios_not_ratio_of_medians() {
        // Repetition 2 ran while the machine was busy: both slowed down together.
        let row = Row {
            config: "x".into(),
            mode: "rw".into(),
            samples: vec![s(90.0, 2.0), s(45.0, 4.0), s(92.0, 2.0)],
            baseline: vec![s(100.0, 1.0), s(50.0, 2.0), s(100.0, 1.0)],
        };
        assert_eq!(row.ratio(), 0.9);
        assert_eq!(row.p99_ratio(), 2.0);
        assert_eq!(row.errors(), 3);
        assert_eq!(row.rps(), 90.0);
        assert_eq!(row.cpu(), 9.0);
        assert_eq!(row.cpu_ratio(), 0.9);
    }

    #[test]
    fn table_has_one_line_per_row_and_the_verdict() {
        let row = Row {
            config: "latch signed".into(),
            mode: "rw".into(),
            samples: vec![s(95.0, 1500.0)],
            baseline: vec![s(100.0, 1000.0)],
        };
        let text = table(&[row], |r| {
            Some(Verdict {
                target: "≥0.90".into(),
                met: r.ratio() >= 0.9,
            })
        });
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(
            lines[2],
            "| rw | latch signed | 95 | 750 µs | 1.50 ms | 1 | 0.95 | 1.50 | 9.5 µs | 0.95 | ≥0.90: met |"
        );
    }

    #[test]
    fn microseconds_are_formatted_by_size() {
        assert_eq!(fmt_us(812.4), "812 µs");
        assert_eq!(fmt_us(1100.0), "1.10 ms");
        assert_eq!(fmt_us(2_000_000.0), "2.00 s");
    }
}
