//! Reads the JSON lines that `bench/compare` collected, writes the SVG chart
//! of `bench/RESULTS.md` and prints its Markdown tables on stdout.
//!
//! Usage: `bench-chart RESULTS.jsonl CHART.svg`
//!
//! Each input line is `{"system", "scenario", "label", "part", "report"}`
//! (`report`: one JSON line of `iocluster-bench`) or, when a run could not
//! produce a report, `{"system", "scenario", "label", "part", "failed"}`.
//! A setup whose clients are split over two servers has two parts: their
//! rates add up, their latencies keep the worse one (p50 and p99 apart),
//! and memory per session is the summed growth over the summed sessions.
//! A run of several rounds (`bench/compare --rounds N`, each line with its
//! `round`) shows each system's median round (protocol errors of every
//! round added up), and, when it has both nginx fleets, a table of the
//! round-robin fleet over the sticky one, round by round: each round
//! measured the two minutes apart at most, so their ratio is the figure
//! this machine's drift disturbs least.
//!
//! Most rows are a rate (higher is better); `hold` is memory per session
//! and `fanout-rate` (a fixed broadcast rate, so its throughput is the
//! offered load) is delivery latency, p50 and p99: lower is better. The
//! ratio column is always iocluster's figure over the peer's, so on those
//! rows below 1× is iocluster ahead.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::ExitCode;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use serde_json::Value;

/// The systems, in the order of the tables and the chart: key, label.
const SYSTEMS: [(&str, &str); 5] = [
    ("iocluster", "iocluster --workers 2"),
    ("node", "Node cluster + sticky"),
    ("socketioxide", "socketioxide"),
    ("nginx", "nginx + 2 × iocluster -w 1"),
    ("direct", "2 × iocluster -w 1 (split)"),
];

/// What a scenario's row shows.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Measure {
    /// Completions per second, in this unit (the parts' rates added).
    Rate(&'static str),
    /// Server memory per idle session (summed growth over summed sessions).
    MemoryPerSession,
    /// The main latency's p50 and p99 in ms (each the parts' worse).
    Latency,
}

impl Measure {
    /// The unit column, which says when lower is better.
    fn unit(self) -> &'static str {
        match self {
            Measure::Rate(unit) => unit,
            Measure::MemoryPerSession => "bytes/session (lower is better)",
            Measure::Latency => "ms, p50 / p99 (lower is better)",
        }
    }
}

/// The scenarios, in order: key and what its row shows.
const SCENARIOS: [(&str, Measure); 9] = [
    ("handshake-browser", Measure::Rate("sessions/s")),
    ("handshake-ws", Measure::Rate("sessions/s")),
    ("handshake-polling", Measure::Rate("sessions/s")),
    ("echo-ws", Measure::Rate("acks/s")),
    ("echo-polling", Measure::Rate("acks/s")),
    ("echo-upgraded", Measure::Rate("acks/s")),
    ("fanout", Measure::Rate("deliveries/s")),
    ("fanout-rate", Measure::Latency),
    ("hold", Measure::MemoryPerSession),
];

/// Bar colours, one per system.
const COLORS: [RGBColor; 5] = [
    RGBColor(0xd9, 0x4f, 0x1e),
    RGBColor(0x3c, 0x87, 0x3a),
    RGBColor(0x2b, 0x6c, 0xb0),
    RGBColor(0x88, 0x88, 0x88),
    RGBColor(0xe8, 0xa2, 0x3a),
];

/// One system's figures in one scenario, over all its parts.
#[derive(Debug, Default, Clone)]
struct Cell {
    /// What the row shows: the sum of the parts' rates, bytes per session,
    /// or the worst p99 in ms (see [`Measure`]).
    value: f64,
    /// Protocol errors, all parts.
    errors: u64,
    /// Fan-out deliveries that never arrived.
    missing: u64,
    /// The worst p50 of the main latency, in ms.
    p50_ms: Option<f64>,
    /// The worst p99 of the main latency, in ms.
    p99_ms: Option<f64>,
    /// `hold`: sessions open, all parts.
    open: u64,
    /// Why a part could not run, if one could not.
    failed: Option<String>,
    /// Why the scenario does not apply to this system, if it does not.
    skipped: Option<String>,
    /// nginx: CPU seconds each backend used during the run.
    backend_cpu_s: Vec<f64>,
    /// nginx: the backends' public-port requests (`iocluster_requests_total`):
    /// served (every request once, by the node that owns its session) and
    /// forwarded to the other node (by the node it landed on).
    requests: Option<(u64, u64)>,
}

impl Cell {
    /// Whether the cell holds a measurement.
    fn measured(&self) -> bool {
        self.failed.is_none() && self.skipped.is_none()
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 3 {
        eprintln!("usage: bench-chart RESULTS.jsonl CHART.svg");
        return ExitCode::from(2);
    }
    let text = match std::fs::read_to_string(&args[1]) {
        Ok(text) => text,
        Err(error) => {
            eprintln!("bench-chart: cannot read {}: {error}", args[1]);
            return ExitCode::from(2);
        }
    };
    let (rounds, labels) = collect(&text);
    let cells = medians(&rounds);
    print!("{}", tables(&cells, &labels));
    print!("{}", round_robin_table(&rounds, &labels));
    if let Err(error) = chart(&cells, &labels, &args[2]) {
        eprintln!("bench-chart: cannot draw {}: {error}", args[2]);
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}

/// The cells by (scenario, system) and the label of each scenario.
type Cells = BTreeMap<(String, String), Cell>;

/// The cells by (scenario, system, round).
type Rounds = BTreeMap<(String, String, u64), Cell>;

/// Folds the JSON lines into one cell per scenario, system and round.
fn collect(text: &str) -> (Rounds, BTreeMap<String, String>) {
    let mut cells = Rounds::new();
    let mut labels = BTreeMap::new();
    // hold: summed growth and sessions, divided at the end.
    let mut growth: BTreeMap<(String, String, u64), f64> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let Ok(row) = serde_json::from_str::<Value>(line) else {
            eprintln!("bench-chart: skipping a line that is not JSON: {line}");
            continue;
        };
        let system = row["system"].as_str().unwrap_or("?").to_string();
        let scenario = row["scenario"].as_str().unwrap_or("?").to_string();
        if let Some(label) = row["label"].as_str() {
            labels
                .entry(scenario.clone())
                .or_insert_with(|| label.to_string());
        }
        let round = row["round"].as_u64().unwrap_or(1);
        let key = (scenario.clone(), system, round);
        let cell = cells.entry(key.clone()).or_default();
        if let Some(cpu) = row["backend_cpu_s"].as_array() {
            cell.backend_cpu_s = cpu.iter().filter_map(Value::as_f64).collect();
        }
        let requests = &row["requests"];
        if let (Some(served), Some(forwarded)) = (
            requests["served"].as_u64(),
            requests["forwarded_to_node"].as_u64(),
        ) {
            cell.requests = Some((served, forwarded));
        }
        if let Some(reason) = row["skipped"].as_str() {
            cell.skipped = Some(reason.to_string());
            continue;
        }
        if let Some(reason) = row["failed"].as_str() {
            cell.failed = Some(reason.to_string());
            continue;
        }
        let report = &row["report"];
        cell.errors += report["error_total"].as_u64().unwrap_or(0);
        cell.missing += report["deliveries_missing"].as_u64().unwrap_or(0);
        let latency = &report["latency"];
        cell.p50_ms = worse(cell.p50_ms, latency["p50_ms"].as_f64());
        cell.p99_ms = worse(cell.p99_ms, latency["p99_ms"].as_f64());
        let measure = SCENARIOS
            .iter()
            .find(|(key, _)| *key == scenario)
            .map_or(Measure::Rate("?"), |(_, measure)| *measure);
        if measure == Measure::Latency {
            cell.value = cell.p99_ms.unwrap_or(0.0);
        } else if measure == Measure::MemoryPerSession {
            let before = report["rss_before_bytes"].as_f64().unwrap_or(0.0);
            let after = report["rss_after_bytes"].as_f64().unwrap_or(0.0);
            *growth.entry(key).or_default() += after - before;
            cell.open += report["open"].as_u64().unwrap_or(0);
        } else {
            cell.value += report["per_second"].as_f64().unwrap_or(0.0);
        }
    }
    for (key, grown) in growth {
        if let Some(cell) = cells.get_mut(&key) {
            cell.value = if cell.open > 0 {
                grown / cell.open as f64
            } else {
                0.0
            };
        }
    }
    (cells, labels)
}

/// Each scenario and system's median round (the lower middle one of an
/// even count), with the protocol errors and missing deliveries of every
/// round, and a failure when any round failed.
fn medians(rounds: &Rounds) -> Cells {
    let mut grouped: BTreeMap<(String, String), Vec<&Cell>> = BTreeMap::new();
    for ((scenario, system, _), cell) in rounds {
        grouped
            .entry((scenario.clone(), system.clone()))
            .or_default()
            .push(cell);
    }
    grouped
        .into_iter()
        .map(|(key, mut cells)| {
            cells.sort_by(|a, b| a.value.total_cmp(&b.value));
            let mut median = cells[(cells.len() - 1) / 2].clone();
            median.errors = cells.iter().map(|c| c.errors).sum();
            median.missing = cells.iter().map(|c| c.missing).sum();
            if median.failed.is_none() {
                median.failed = cells.iter().find_map(|c| c.failed.clone());
            }
            (key, median)
        })
        .collect()
}

/// The round-robin fleet (`nginx-rr`) over the sticky one (`nginx`) on
/// each rate row both ran: each round's ratio, their median, and the share
/// of the round-robin fleet's requests that were forwarded. Empty when the
/// run had no round-robin fleet.
fn round_robin_table(rounds: &Rounds, labels: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    for (scenario, measure) in SCENARIOS {
        if !matches!(measure, Measure::Rate(_)) {
            continue;
        }
        let fleet = |system: &str| -> Vec<(u64, &Cell)> {
            rounds
                .iter()
                .filter(|((s, sys, _), cell)| s == scenario && sys == system && cell.measured())
                .map(|((_, _, round), cell)| (*round, cell))
                .collect()
        };
        let (sticky, round_robin) = (fleet("nginx"), fleet("nginx-rr"));
        let mut ratios: Vec<f64> = round_robin
            .iter()
            .filter_map(|(round, rr)| {
                let (_, sticky) = sticky.iter().find(|(r, _)| r == round)?;
                (sticky.value > 0.0).then(|| rr.value / sticky.value)
            })
            .collect();
        if ratios.is_empty() {
            continue;
        }
        if out.is_empty() {
            out.push_str("\nRound-robin nginx with no stickiness (`nginx-rr`, the nodes forwarding each other's sessions) over the sticky fleet (`nginx`, `hash $remote_addr`), round by round:\n\n");
            out.push_str("| scenario | each round: round-robin ÷ sticky | median | requests forwarded |\n|---|---|---:|---:|\n");
        }
        let each: Vec<String> = ratios.iter().map(|r| format!("{r:.2}×")).collect();
        ratios.sort_by(f64::total_cmp);
        let median = ratios[(ratios.len() - 1) / 2];
        let (served, forwarded) = round_robin
            .iter()
            .filter_map(|(_, cell)| cell.requests)
            .fold((0, 0), |(s, f), (served, fwd)| (s + served, f + fwd));
        let share = match served {
            0 => "—".to_string(),
            all => format!("{:.0} %", 100.0 * forwarded as f64 / all as f64),
        };
        let label = labels.get(scenario).map_or(scenario, String::as_str);
        let _ = writeln!(
            out,
            "| {label} | {} | **{median:.3}×** | {share} |",
            each.join(", ")
        );
    }
    out
}

/// The larger of two latencies, either of which may be missing.
fn worse(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// `12345.6` → `12,346`; small values keep one decimal.
fn human(value: f64) -> String {
    if value.abs() < 100.0 {
        return format!("{value:.1}");
    }
    let digits = format!("{:.0}", value);
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 && c.is_ascii_digit() {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The two Markdown tables: values with ratios, then p99 and errors.
fn tables(cells: &Cells, labels: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let peers = &SYSTEMS[1..];
    let _ = write!(out, "| scenario | unit | {} |", SYSTEMS[0].1);
    for (_, label) in peers {
        let _ = write!(out, " {label} | iocluster ÷ it |");
    }
    out.push('\n');
    out.push_str("|---|---|---:|");
    for _ in peers {
        out.push_str("---:|---:|");
    }
    out.push('\n');
    for (scenario, measure) in SCENARIOS {
        let label = labels.get(scenario).map_or(scenario, String::as_str);
        let ours = cells.get(&(scenario.to_string(), SYSTEMS[0].0.to_string()));
        let _ = write!(
            out,
            "| {label} | {} | {} |",
            measure.unit(),
            value_cell(ours, measure)
        );
        for (system, _) in peers {
            let theirs = cells.get(&(scenario.to_string(), system.to_string()));
            let _ = write!(
                out,
                " {} | {} |",
                value_cell(theirs, measure),
                ratio_cell(ours, theirs, measure)
            );
        }
        out.push('\n');
    }
    out.push_str("\np99 latency of the main measure (open, ack or delivery), ms; protocol errors; fan-out deliveries missing:\n\n");
    out.push_str("| scenario |");
    for (_, label) in SYSTEMS {
        let _ = write!(out, " {label} |");
    }
    out.push_str("\n|---|");
    for _ in SYSTEMS {
        out.push_str("---:|");
    }
    out.push('\n');
    for (scenario, _) in SCENARIOS {
        let label = labels.get(scenario).map_or(scenario, String::as_str);
        let _ = write!(out, "| {label} |");
        for (system, _) in SYSTEMS {
            let text = match cells.get(&(scenario.to_string(), system.to_string())) {
                None => "—".to_string(),
                Some(cell) if cell.skipped.is_some() => "n/a".to_string(),
                Some(cell) if cell.failed.is_some() => "failed".to_string(),
                Some(cell) => {
                    let p99 = cell.p99_ms.map_or("—".to_string(), |p| format!("{p:.2}"));
                    let mut text = format!("{p99}; {} err", cell.errors);
                    if cell.missing > 0 {
                        let _ = write!(text, "; {} missing", cell.missing);
                    }
                    text
                }
            };
            let _ = write!(out, " {text} |");
        }
        out.push('\n');
    }
    let nginx: Vec<String> = SCENARIOS
        .iter()
        .filter_map(|(scenario, _)| {
            let cell = cells.get(&(scenario.to_string(), "nginx".to_string()))?;
            (!cell.backend_cpu_s.is_empty()).then(|| {
                let cpu: Vec<String> = cell
                    .backend_cpu_s
                    .iter()
                    .map(|s| format!("{s:.2}"))
                    .collect();
                format!("{scenario}: {} s", cpu.join(" / "))
            })
        })
        .collect();
    if !nginx.is_empty() {
        let _ = writeln!(
            out,
            "\nCPU time of the two nginx backends during each run: {}.",
            nginx.join("; ")
        );
    }
    out
}

/// A value, or why there is none.
fn value_cell(cell: Option<&Cell>, measure: Measure) -> String {
    match cell {
        None => "—".to_string(),
        Some(cell) if cell.skipped.is_some() => "n/a".to_string(),
        Some(cell) => match &cell.failed {
            Some(_) => "failed".to_string(),
            None => {
                let mut text = match measure {
                    Measure::Latency => match (cell.p50_ms, cell.p99_ms) {
                        (Some(p50), Some(p99)) => format!("{} / {}", ms(p50), ms(p99)),
                        _ => "—".to_string(),
                    },
                    _ => human(cell.value),
                };
                if cell.errors > 0 {
                    let _ = write!(text, " ({} err)", cell.errors);
                }
                text
            }
        },
    }
}

/// iocluster's figure over the peer's, as the column says: for a rate
/// above 1× is iocluster ahead; for memory and latency (lower is better)
/// below 1× is. A latency row has two ratios, p50 / p99.
fn ratio_cell(ours: Option<&Cell>, theirs: Option<&Cell>, measure: Measure) -> String {
    let (Some(ours), Some(theirs)) = (ours, theirs) else {
        return "—".to_string();
    };
    if !usable(ours) || !usable(theirs) {
        return "—".to_string();
    }
    let ratio = |ours: Option<f64>, theirs: Option<f64>| match (ours, theirs) {
        (Some(ours), Some(theirs)) if theirs > 0.0 => format!("{:.2}×", ours / theirs),
        _ => "—".to_string(),
    };
    match measure {
        Measure::Latency => format!(
            "{} / {}",
            ratio(ours.p50_ms, theirs.p50_ms),
            ratio(ours.p99_ms, theirs.p99_ms)
        ),
        _ => ratio(Some(ours.value), Some(theirs.value)),
    }
}

/// Milliseconds: two decimals below 10 ms, then one.
fn ms(value: f64) -> String {
    if value < 10.0 {
        format!("{value:.2}")
    } else {
        format!("{value:.1}")
    }
}

/// Whether a cell has a value to show.
fn usable(cell: &Cell) -> bool {
    cell.failed.is_none() && cell.skipped.is_none()
}

/// One bar chart per scenario, every system side by side. A latency
/// panel draws each p99 bar light with its p50 dark inside it.
fn chart(
    cells: &Cells,
    labels: &BTreeMap<String, String>,
    path: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::new(path, (1800, 1400)).into_drawing_area();
    root.fill(&WHITE)?;
    let (title, body) = root.split_vertically(40);
    title.titled(
        "iocluster and its peers on one machine, 2 workers each (bench/compare)",
        ("sans-serif", 22),
    )?;
    let panels = body.split_evenly((3, 3));
    for (panel, (scenario, measure)) in panels.iter().zip(SCENARIOS) {
        // (system index, bar height, p50 for a latency panel)
        let bars: Vec<(usize, f64, Option<f64>)> = SYSTEMS
            .iter()
            .enumerate()
            .filter_map(|(i, (system, _))| {
                let cell = cells.get(&(scenario.to_string(), system.to_string()))?;
                let p50 = (measure == Measure::Latency)
                    .then_some(cell.p50_ms)
                    .flatten();
                usable(cell).then_some((i, cell.value, p50))
            })
            .collect();
        let top = bars.iter().map(|(_, v, _)| *v).fold(0.0_f64, f64::max).max(
            if measure == Measure::Latency {
                0.1
            } else {
                1.0
            },
        ) * 1.18;
        let label = labels.get(scenario).map_or(scenario, String::as_str);
        // Two lines: a label and its unit do not fit one 500-pixel line.
        let area = panel.titled(label, ("sans-serif", 14))?;
        let unit = match measure {
            Measure::Latency => "ms: p50 dark, p99 light; lower is better".to_string(),
            measure => measure.unit().to_string(),
        };
        let area = area.titled(&unit, ("sans-serif", 12))?;
        let mut chart = ChartBuilder::on(&area)
            .margin(12)
            .x_label_area_size(70)
            .y_label_area_size(70)
            .build_cartesian_2d((0..SYSTEMS.len() - 1).into_segmented(), 0.0..top)?;
        let axis = |v: &f64| match measure {
            Measure::Latency => ms(*v),
            _ => human(*v),
        };
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(WHITE)
            .x_labels(SYSTEMS.len())
            .x_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) => short_name(*i),
                _ => String::new(),
            })
            .x_label_style(("sans-serif", 11))
            .y_label_formatter(&axis)
            .draw()?;
        for (i, value, p50) in &bars {
            let (style, text) = match p50 {
                Some(p50) => (
                    COLORS[*i].mix(0.4).filled(),
                    format!("{} / {}", ms(*p50), ms(*value)),
                ),
                None => (COLORS[*i].filled(), axis(value)),
            };
            chart.draw_series(
                Histogram::vertical(&chart)
                    .style(style)
                    .margin(10)
                    .data([(*i, *value)]),
            )?;
            if let Some(p50) = p50 {
                chart.draw_series(
                    Histogram::vertical(&chart)
                        .style(COLORS[*i].filled())
                        .margin(10)
                        .data([(*i, *p50)]),
                )?;
            }
            chart.draw_series(std::iter::once(Text::new(
                text,
                (SegmentValue::CenterOf(*i), *value + top * 0.01),
                ("sans-serif", 12)
                    .into_font()
                    .color(&BLACK)
                    .pos(Pos::new(HPos::Center, VPos::Bottom)),
            )))?;
        }
    }
    root.present()?;
    Ok(())
}

/// The x-axis name of system `i`: short enough for a panel.
fn short_name(i: usize) -> String {
    ["iocluster", "Node", "socketioxide", "nginx+2", "direct 2"]
        .get(i)
        .map_or(String::new(), |s| s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(system: &str, scenario: &str, round: u64, per_second: f64, errors: u64) -> String {
        format!(
            r#"{{"system":"{system}","scenario":"{scenario}","label":"L","part":0,"round":{round},"requests":{{"served":30,"forwarded_to_node":10}},"report":{{"per_second":{per_second},"error_total":{errors}}}}}"#
        )
    }

    #[test]
    fn a_system_shows_its_median_round_with_every_rounds_errors() {
        let text = [
            line("nginx", "echo-polling", 1, 300.0, 0),
            line("nginx", "echo-polling", 2, 100.0, 2),
            line("nginx", "echo-polling", 3, 200.0, 1),
        ]
        .join("\n");
        let (rounds, _) = collect(&text);
        let cells = medians(&rounds);
        let cell = &cells[&("echo-polling".to_string(), "nginx".to_string())];
        assert_eq!((cell.value, cell.errors), (200.0, 3));
    }

    #[test]
    fn the_round_robin_table_pairs_rounds_and_takes_the_median_ratio() {
        let text = [
            line("nginx", "echo-polling", 1, 100.0, 0),
            line("nginx-rr", "echo-polling", 1, 90.0, 0),
            line("nginx", "echo-polling", 2, 200.0, 0),
            line("nginx-rr", "echo-polling", 2, 140.0, 0),
            line("nginx", "echo-polling", 3, 100.0, 0),
            line("nginx-rr", "echo-polling", 3, 80.0, 0),
        ]
        .join("\n");
        let (rounds, labels) = collect(&text);
        let table = round_robin_table(&rounds, &labels);
        assert!(
            table.contains("| L | 0.90×, 0.70×, 0.80× | **0.800×** | 33 % |"),
            "{table}"
        );
        let (rounds, labels) = collect(&line("nginx", "echo-polling", 1, 100.0, 0));
        assert_eq!(round_robin_table(&rounds, &labels), "");
    }
}
