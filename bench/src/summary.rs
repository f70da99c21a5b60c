//! The table of medians printed at the end of a benchmark run.
//!
//! Input: the JSON result records `bench-load --json` prints, one per measurement (several
//! rounds per case and server). Output: per case, one row per server with the median of
//! each figure over its rounds, and the server's CPU per message (or memory per idle
//! session) as a ratio to the case's raw reference server and to the sockjs-node peer.

use std::fmt::Write as _;

use serde_json::Value;

/// The server label the driver gives sockjs-node, the peer every row is also compared with.
pub const PEER_LABEL: &str = "sockjs-node";

/// Median of `values` (mean of the middle two for an even count); `None` if empty.
pub fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    })
}

struct Group<'a> {
    case: String,
    server: String,
    records: Vec<&'a Value>,
}

impl Group<'_> {
    fn median_of(&self, field: &str) -> Option<f64> {
        let mut v: Vec<f64> = self
            .records
            .iter()
            .filter_map(|r| r.get(field).and_then(Value::as_f64))
            .collect();
        median(&mut v)
    }

    fn text(&self, field: &str) -> Option<&str> {
        self.records.first()?.get(field)?.as_str()
    }
}

/// Renders the table for `records`, cases and servers in first-seen order.
pub fn render(records: &[Value]) -> String {
    let mut groups: Vec<Group<'_>> = Vec::new();
    for r in records {
        let case = r.get("case").and_then(Value::as_str).unwrap_or("?");
        let server = r.get("server").and_then(Value::as_str).unwrap_or("?");
        match groups
            .iter_mut()
            .find(|g| g.case == case && g.server == server)
        {
            Some(g) => g.records.push(r),
            None => groups.push(Group {
                case: case.to_string(),
                server: server.to_string(),
                records: vec![r],
            }),
        }
    }
    let mut cases: Vec<&str> = Vec::new();
    for g in &groups {
        if !cases.contains(&g.case.as_str()) {
            cases.push(&g.case);
        }
    }
    let mut out = String::new();
    for case in cases {
        let rows: Vec<&Group<'_>> = groups.iter().filter(|g| g.case == case).collect();
        let idle = rows[0]
            .text("scenario")
            .is_some_and(|s| s.starts_with("idle"));
        let desc = rows[0].text("params").unwrap_or("");
        let _ = writeln!(out, "\n== {case}: {desc}");
        let (key, unit) = if idle {
            ("kib_per_session", "KiB/sess")
        } else {
            ("cpu_us_per_msg", "cpu us/msg")
        };
        let reference = |label: Option<&str>| -> Option<f64> {
            let label = label?;
            rows.iter()
                .find(|g| g.server == label)
                .and_then(|g| g.median_of(key))
        };
        if idle {
            let _ = writeln!(
                out,
                "{:<22} {:>3} {:>7} {:>8} {:>10} {:>9} {:>7} {:>7} {:>6}",
                "server", "n", "open", "open s", "cpu us/op", unit, "x raw", "x node", "errors"
            );
        } else {
            let _ = writeln!(
                out,
                "{:<22} {:>3} {:>9} {:>8} {:>8} {:>8} {:>8} {:>13} {:>10} {:>7} {:>7} {:>6}",
                "server",
                "n",
                "msgs/s",
                "p50 ms",
                "p90 ms",
                "p99 ms",
                "max ms",
                "min/max sess",
                unit,
                "x raw",
                "x node",
                "errors"
            );
        }
        for g in &rows {
            let own = g.median_of(key);
            let ratio = |base: Option<f64>| match (own, base) {
                (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
                _ => "-".to_string(),
            };
            let x_raw = ratio(reference(g.text("raw_ref")));
            let x_node = ratio(reference(Some(PEER_LABEL)));
            let num = |field: &str, scale: f64, places: usize| {
                g.median_of(field)
                    .map(|v| format!("{:.*}", places, v * scale))
                    .unwrap_or_else(|| "-".to_string())
            };
            let n = g.records.len();
            if idle {
                let _ = writeln!(
                    out,
                    "{:<22} {:>3} {:>7} {:>8} {:>10} {:>9} {:>7} {:>7} {:>6}",
                    g.server,
                    n,
                    num("opened", 1.0, 0),
                    num("open_s", 1.0, 2),
                    num("cpu_us_per_open", 1.0, 1),
                    num(key, 1.0, 2),
                    x_raw,
                    x_node,
                    num("errors", 1.0, 0)
                );
            } else {
                let fairness = format!(
                    "{}/{}",
                    num("per_session_min", 1.0, 0),
                    num("per_session_max", 1.0, 0)
                );
                let _ = writeln!(
                    out,
                    "{:<22} {:>3} {:>9} {:>8} {:>8} {:>8} {:>8} {:>13} {:>10} {:>7} {:>7} {:>6}",
                    g.server,
                    n,
                    num("throughput", 1.0, 0),
                    num("p50_us", 1e-3, 2),
                    num("p90_us", 1e-3, 2),
                    num("p99_us", 1e-3, 2),
                    num("max_us", 1e-3, 1),
                    fairness,
                    num(key, 1.0, 2),
                    x_raw,
                    x_node,
                    num("errors", 1.0, 0)
                );
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn medians() {
        assert_eq!(median(&mut []), None);
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), Some(2.5));
    }

    #[test]
    fn table_has_medians_and_ratios() {
        let rec = |server: &str, cpu: f64| {
            json!({"case": "ws-echo-fixed", "scenario": "ws-echo", "server": server,
                   "raw_ref": "raw-ws", "params": "p", "throughput": 1000.0,
                   "p50_us": 150.0, "cpu_us_per_msg": cpu, "errors": 0})
        };
        let records = vec![
            rec("raw-ws", 2.0),
            rec("sockjs-node", 4.0),
            rec("raw-ws", 2.0),
            rec("sockjs-node", 5.0),
            rec("sockjs-node", 4.4),
        ];
        let table = render(&records);
        let node_row = table
            .lines()
            .find(|l| l.starts_with("sockjs-node"))
            .unwrap();
        let cells: Vec<&str> = node_row.split_whitespace().collect();
        // server n msgs/s p50 p90 p99 max min/max cpu xraw xnode errors
        assert_eq!(cells[1], "3");
        assert_eq!(cells[3], "0.15");
        assert_eq!(cells[8], "4.40");
        assert_eq!(cells[9], "2.20");
        assert_eq!(cells[10], "1.00");
        assert!(table.contains("== ws-echo-fixed: p"));
    }
}
