//! report: turns loadgen's JSON lines into the README's Markdown tables, with the median of
//! every figure over the rounds. Tags are `CASE/SERVER`; cases and servers keep the order in
//! which they first appear. Runs with errors are listed under the tables, not counted.

use std::collections::BTreeMap;
use std::fs;

use threadnet_harness::args::fail;
use threadnet_harness::json::{parse, Value};

const USAGE: &str = "usage: report RESULTS.jsonl   (loadgen's lines, tags CASE/SERVER)";

type Run = BTreeMap<String, Value>;

/// Clean runs of every (case, server), in order of first appearance.
#[derive(Default)]
struct Table {
    cases: Vec<String>,
    servers: Vec<String>,
    runs: BTreeMap<(String, String), Vec<Run>>,
}

impl Table {
    fn add(&mut self, case: &str, server: &str, run: Run) {
        for (list, name) in [(&mut self.cases, case), (&mut self.servers, server)] {
            if !list.iter().any(|n| n == name) {
                list.push(name.to_string());
            }
        }
        let key = (case.to_string(), server.to_string());
        self.runs.entry(key).or_default().push(run);
    }

    /// The median of `field` over the clean runs of `case` on `server`.
    fn median(&self, case: &str, server: &str, field: &str) -> Option<f64> {
        let runs = self.runs.get(&(case.to_string(), server.to_string()))?;
        let mut values: Vec<f64> = runs.iter().filter_map(|r| num(r, field)).collect();
        values.sort_by(f64::total_cmp);
        let n = values.len();
        match n {
            0 => None,
            _ if n % 2 == 1 => Some(values[n / 2]),
            _ => Some((values[n / 2 - 1] + values[n / 2]) / 2.0),
        }
    }

    fn cell(&self, case: &str, server: &str, field: &str, decimals: usize) -> String {
        match self.median(case, server, field) {
            Some(v) => {
                // Rounded first, then + 0.0, so that a tiny negative prints "0.0", not "-0.0".
                let scale = 10f64.powi(decimals as i32);
                format!("{:.decimals$}", (v * scale).round() / scale + 0.0)
            }
            None => "–".into(),
        }
    }

    /// One figure per server, joined with " / ".
    fn per_server(&self, case: &str, field: &str, decimals: usize) -> String {
        let cells: Vec<String> = self
            .servers
            .iter()
            .map(|s| self.cell(case, s, field, decimals))
            .collect();
        cells.join(" / ")
    }

    fn rounds(&self) -> usize {
        self.runs.values().map(Vec::len).max().unwrap_or(0)
    }
}

fn num(run: &Run, field: &str) -> Option<f64> {
    match run.get(field) {
        Some(Value::Num(v)) => Some(*v),
        _ => None,
    }
}

fn text<'a>(run: &'a Run, field: &str) -> &'a str {
    match run.get(field) {
        Some(Value::Str(s)) => s,
        _ => "",
    }
}

fn main() {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| fail(USAGE, "no results file".into()));
    let lines = fs::read_to_string(&path).unwrap_or_else(|e| fail(USAGE, format!("{path}: {e}")));
    let (mut load, mut idle, mut bad) = (Table::default(), Table::default(), Vec::new());
    for line in lines.lines().filter(|l| !l.trim().is_empty()) {
        let Some(run) = parse(line) else {
            bad.push(line.to_string());
            continue;
        };
        let clean = !run.contains_key("error") && num(&run, "errors") == Some(0.0);
        let tag = text(&run, "tag").to_string();
        let (case, server) = tag.rsplit_once('/').unwrap_or((&tag, "?"));
        if !clean {
            bad.push(line.to_string());
        } else if text(&run, "mode") == "idle" {
            idle.add(case, server, run.clone());
        } else {
            load.add(case, server, run.clone());
        }
    }

    if !load.cases.is_empty() {
        println!("Medians of {} rounds.\n", load.rounds());
        let names = load.servers.join(" / ");
        let mut head = String::from("| test |");
        for s in &load.servers {
            head += &format!(" {s} MiB/s |");
        }
        println!("{head} server µs per frame ({names}) |");
        println!("|---{}|---|", "|---".repeat(load.servers.len()));
        for case in &load.cases {
            let mut row = format!("| {case} |");
            for s in &load.servers {
                row += &format!(" {} |", load.cell(case, s, "mib_s", 0));
            }
            println!(
                "{row} {} |",
                load.per_server(case, "server_us_per_frame", 1)
            );
        }
    }
    if !idle.cases.is_empty() {
        println!(
            "\nIdle connections, medians of {} rounds: KiB per connection.\n",
            idle.rounds()
        );
        let names = idle.servers.join(" / ");
        println!("| test | server RSS ({names}) | kernel stack ({names}) | threads ({names}) |");
        println!("|---|---|---|---|");
        for case in &idle.cases {
            println!(
                "| {case} | {} | {} | {} |",
                idle.per_server(case, "rss_kib_per_conn", 2),
                idle.per_server(case, "kernel_stack_kib_per_conn", 1),
                idle.per_server(case, "threads_per_conn", 2),
            );
        }
    }
    if bad.is_empty() {
        println!("\nEvery run was clean: no errors, every echo matched.");
    } else {
        println!("\n{} run(s) had errors and are left out:\n", bad.len());
        for line in &bad {
            println!("    {line}");
        }
    }
}
